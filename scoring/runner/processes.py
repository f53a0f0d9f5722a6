"""Where worker processes come from: a fork server, started once and warm.

Workers are forked from a fork server (fresh, thread-safe, fast to replace) that has already
imported what a worker needs (pandas, pyarrow, the product's scoring modules: about a third of
a second, paid once per run instead of once per worker); where there is none (not on Linux),
they are spawned.

:func:`start_fork_server` starts the server before the caller has imported the runner, so the
server's imports and the caller's run side by side on two cores instead of one after the other:
on a run of one mini-batch that is about a fifth of the wall time. :func:`stop_fork_server`
ends it when the caller is done with workers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal

#: imported once in the fork server, so every (re)started worker starts warm
PRELOAD = ["scoring.runner.workers", "scoring.steps.score"]


def start_method() -> str:
    """forkserver where available, else spawn."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def worker_context():
    """The multiprocessing context workers are started from."""
    context = multiprocessing.get_context(start_method())
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(PRELOAD)
    return context


def start_fork_server() -> None:
    """Start the fork server now (where workers fork), so it imports :data:`PRELOAD` while the
    caller goes on. ``multiprocessing.forkserver.ensure_running`` returns once the server
    process exists, not once its imports are done; starting workers later waits for them."""
    context = worker_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def stop_fork_server() -> None:
    """End the fork server once the caller's workers are all gone.

    Left alone, the server notices its caller's exit only when the caller has exited, and then
    tears down an interpreter holding pandas and pyarrow (about a tenth of a second) while it
    still holds the caller's stdout and stderr: whoever reads the command's output (a shell
    pipe, CI, ``subprocess``) waits for that too. It keeps no state (every worker has already
    been reaped), so it is terminated outright; a later worker starts a fresh server
    (``ensure_running`` restarts a dead one). Python's ``ForkServer`` has no public stop: this
    uses the one its own tests use, ``_stop()``, where it exists (3.11 to 3.14), and otherwise
    leaves the server to end with the caller, as before.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    stop = getattr(server, "_stop", None)
    if pid is None or not callable(stop):
        return
    try:
        os.kill(pid, signal.SIGTERM)  # no teardown; _stop() then reaps it and forgets it
    except ProcessLookupError:
        pass
    stop()
