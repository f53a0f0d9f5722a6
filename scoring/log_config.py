"""The logging levels the product accepts, and how a command-line process logs.

One format for the command line and the pipeline steps (the runner's workers add their id,
:mod:`scoring.runner.workers`). Below DEBUG, third-party libraries log only warnings: the
Azure SDK logs every HTTP request and response at INFO, which buries a command's own lines
(``--log-level DEBUG`` shows them again).
"""

from __future__ import annotations

import logging

#: what ``--log-level`` and Azure ML's ``logging_level`` accept
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: libraries whose INFO lines are noise to a command's user
THIRD_PARTY_LOGGERS = ("azure", "msal", "urllib3", "matplotlib", "PIL")


def configure(level: str) -> None:
    """Log to stderr at ``level``; third-party loggers at WARNING or above unless DEBUG."""
    level_number = logging.getLevelName(level.upper())
    logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger().setLevel(level_number)
    third_party = logging.NOTSET if level_number <= logging.DEBUG else logging.WARNING
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(max(third_party, level_number))
