"""The one error hierarchy of the product, and the one place it becomes an exit code.

Every error a user may see derives from :class:`BatchscoreError` and carries its exit code:

* :class:`UsageError` (exit 2): bad input from the user (a flag, a path, a file, a value);
  printed as one line, no traceback, nothing else lost.
* :class:`RunFailed` (exit 1): the input was fine but the work failed (a threshold
  exceeded, an upload refused).

A run that worked but found nothing to score (an empty window: no readings arrived) exits
with :data:`EXIT_EMPTY`, so a schedule or a shell surfaces an ingestion outage instead of a
green run.

Domain errors subclass one of the two (``DatabaseError(UsageError)``, ...), so library code
raises what it knows and never imports a command line; :func:`exit_code_of` (used by the
``batchscore`` command line and by the pipeline steps' own ``main``) maps them, as click does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_EMPTY = 3


class BatchscoreError(Exception):
    """An error reported to the user as one line; ``exit_code`` is what the process returns."""

    exit_code = EXIT_FAILED


class UsageError(BatchscoreError):
    """Bad input from the user: printed as one line, exit code 2, no traceback."""

    exit_code = EXIT_USAGE


class RunFailed(BatchscoreError):
    """The input was usable but the run failed (exit code 1)."""

    exit_code = EXIT_FAILED


def run_reporting_errors(action: Callable[[], int | None]) -> int:
    """``action()``'s exit code; a :class:`BatchscoreError` becomes one line on stderr and its
    exit code, Ctrl-C exit 1 with "interrupted", a reader that went away (``| head``) exit 1
    without a word. The one mapping of errors to exit codes."""
    try:
        return int(action() or EXIT_OK)
    except BatchscoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # Python's own advice: point stdout at /dev/null, or flushing it at exit fails again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
