"""The one error hierarchy of the product, and the one place it becomes an exit code.

Every error a user may see derives from :class:`BatchscoreError` and carries its exit code:

* :class:`UsageError` (exit 2): bad input from the user (a flag, a path, a file, a value);
  printed as one line, no traceback, nothing else lost.
* :class:`RunFailed` (exit 1): the input was fine but the work failed (a threshold
  exceeded, an upload refused).

A run that worked but found nothing to score (an empty window: no readings arrived) exits
with :data:`EXIT_EMPTY`, so a schedule or a shell surfaces an ingestion outage instead of a
green run.

An interrupted command exits as a shell reports a process ended by the signal: 130 for
Ctrl-C (SIGINT), 143 for SIGTERM (what ``kill``, a container stop or a scheduler sends).
SIGTERM is turned into :class:`Terminated`, a ``KeyboardInterrupt``, so every clean-up path
written for Ctrl-C (locks released, temporary files removed, a summary saying "interrupted",
the last good output kept) runs for it too.

Domain errors subclass one of the two (``DatabaseError(UsageError)``, ...), so library code
raises what it knows and never imports a command line; :func:`exit_code_of` (used by the
``batchscore`` command line and by the pipeline steps' own ``main``) maps them, as click does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_EMPTY = 3
#: 128 + the signal's number, as a shell reports a process the signal ended
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class BatchscoreError(Exception):
    """An error reported to the user as one line; ``exit_code`` is what the process returns."""

    exit_code = EXIT_FAILED


class UsageError(BatchscoreError):
    """Bad input from the user: printed as one line, exit code 2, no traceback."""

    exit_code = EXIT_USAGE


class RunFailed(BatchscoreError):
    """The input was usable but the run failed (exit code 1)."""

    exit_code = EXIT_FAILED


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where the process is, like Ctrl-C's ``KeyboardInterrupt``."""


def interruption_exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread (elsewhere, where a
    handler cannot be set, nothing changes); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_reporting_errors(action: Callable[[], int | None]) -> int:
    """``action()``'s exit code; a :class:`BatchscoreError` becomes one line on stderr and its
    exit code; Ctrl-C one line and 130, SIGTERM one line and 143; a reader that went away
    (``| head``) exit 1 without a word. The one mapping of errors to exit codes."""
    try:
        with sigterm_raises():
            return int(action() or EXIT_OK)
    except BatchscoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        code = interruption_exit_code(exc)
        cause = "SIGTERM" if code == EXIT_TERMINATED else "Ctrl-C"
        print(f"error: interrupted ({cause}); exit code {code}", file=sys.stderr)
        return code
    except BrokenPipeError:
        # Python's own advice: point stdout at /dev/null, or flushing it at exit fails again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
