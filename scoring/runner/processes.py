"""Where worker processes come from: a fork server, started once and warm.

Workers are forked from a fork server (fresh, thread-safe, fast to replace) that has already
imported what a worker needs (pandas, pyarrow, the product's scoring modules: about a third of
a second, paid once per run instead of once per worker); where there is none (not on Linux),
they are spawned.

:func:`start_fork_server` starts the server before the caller has imported the runner, so the
server's imports and the caller's run side by side on two cores instead of one after the other:
on a run of one mini-batch that is about a fifth of the wall time.
"""

from __future__ import annotations

import multiprocessing

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
