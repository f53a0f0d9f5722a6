"""The logging levels the product accepts, and how a command-line process logs.

One format for the command line and the pipeline steps (the runner's workers add their id,
:mod:`scoring.runner.workers`). Below DEBUG, third-party libraries log only warnings: the
Azure SDK logs every HTTP request and response at INFO, which buries a command's own lines.
Also below DEBUG, two kinds of third-party noise are dropped altogether: azure-ai-ml's
"This is an experimental class" line for each of its own schema classes, and the deprecation
warnings its schemas raise on marshmallow. ``--log-level DEBUG`` shows all of it again.
"""

from __future__ import annotations

import logging
import warnings

#: what ``--log-level`` and Azure ML's ``logging_level`` accept
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: libraries whose INFO lines are noise to a command's user
THIRD_PARTY_LOGGERS = ("azure", "msal", "urllib3", "matplotlib", "PIL")
#: loggers with nothing for a user below DEBUG (azure-ai-ml gives its loggers a handler of
#: their own, so only their own level keeps them quiet)
SILENCED_LOGGERS = (
    "azure.ai.ml._utils._experimental",  # "This is an experimental class" per schema class
    "azure.identity._credentials.chained",  # every credential tried, the command says what to do
)
#: modules whose deprecation warnings are about libraries we do not call ourselves
SILENCED_WARNINGS_FROM = r"(azure|marshmallow)(\.|$)"


def configure(level: str) -> None:
    """Log to stderr at ``level``; third-party loggers at WARNING or above unless DEBUG."""
    level_number = logging.getLevelName(level.upper())
    logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger().setLevel(level_number)
    debug = level_number <= logging.DEBUG
    third_party = logging.NOTSET if debug else logging.WARNING
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(max(third_party, level_number))
    for name in SILENCED_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.ERROR)
    if not debug:
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, module=SILENCED_WARNINGS_FROM
        )
