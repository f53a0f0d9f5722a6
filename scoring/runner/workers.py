"""Worker processes: each imports the entry script, calls ``init()`` once, ``run()`` per
mini-batch and ``shutdown()`` at the end, like one process of an Azure ML parallel job node.

The parent talks to each worker over its own pipe (so it always knows which mini-batch a
worker holds, and can kill a worker that hangs). Protocol, one small dataclass per message:

* parent -> worker: :class:`Tasks` (processed in order), or :class:`Stop`.
* worker -> parent: :class:`Ready` or :class:`InitFailed` once; a :class:`MiniBatchResult`
  per mini-batch; :class:`Stopped` last. The parent's side adds :class:`PipeClosed` when the
  pipe ends. A worker's lifecycle, as the parent tracks it, is a :class:`WorkerState`.
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import logging
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import pyarrow as pa

from scoring.data.extract_folder import read_partition
from scoring.runner.contract import MiniBatchContext
from scoring.runner.inputs import (
    KIND_FILES,
    KIND_FRAME,
    KIND_PARTITION,
    MiniBatchTask,
    partition_row_count,
)
from scoring.runner.returned_items import count_items, to_table


class WorkerState(enum.Enum):
    """Where a worker is in its life, as the parent sees it."""

    STARTING = "starting"  # importing the script and running init()
    IDLE = "idle"  # ready, holding no mini-batch
    BUSY = "busy"  # holding mini-batches
    STOPPING = "stopping"  # asked to run shutdown() and exit
    STOPPED = "stopped"  # shutdown() done, the process is exiting


@dataclass(frozen=True)
class Tasks:
    """Parent -> worker: mini-batches to process in order."""

    tasks: list


@dataclass(frozen=True)
class Stop:
    """Parent -> worker: run ``shutdown()`` and exit."""


@dataclass(frozen=True)
class Ready:
    """Worker -> parent: ``init()`` finished."""

    init_seconds: float


@dataclass(frozen=True)
class InitFailed:
    """Worker -> parent: importing the script or ``init()`` failed."""

    reason: str
    traceback: str


@dataclass(frozen=True)
class Stopped:
    """Worker -> parent, last: ``shutdown()`` ran (its error, if any) and the CPU time used."""

    shutdown_error: str | None
    cpu_seconds: float


@dataclass(frozen=True)
class PipeClosed:
    """Parent side: the worker's pipe ended (the worker exited or died)."""


MAX_REASON_CHARS = 500
MAX_WARNING_CHARS = 300

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker of a run needs (picklable: it crosses into the new process)."""

    worker_id: int
    entry_script: str
    program_arguments: list[str]
    log_level: str = "INFO"
    keep_rows: bool = True
    sort_tabular_rows: bool = True
    max_warnings: int = 5


@dataclass
class MiniBatchResult:
    """One attempt at one mini-batch, as the worker saw it."""

    index: int
    attempt: int
    ok: bool
    items_in: int
    items_returned: int = 0
    reason: str | None = None
    table: pa.Table | None = None
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    read_seconds: float = 0.0
    run_seconds: float = 0.0


# --- inside the worker process ----------------------------------------------------------


class _WarningCapture(logging.Handler):
    """Keeps the first few WARNING+ records of the current mini-batch and counts the rest."""

    def __init__(self, limit: int) -> None:
        super().__init__(level=logging.WARNING)
        self.limit = limit
        self.messages: list[str] = []
        self.count = 0
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def reset(self) -> None:
        self.messages, self.count = [], 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.messages) < self.limit:
            try:
                self.messages.append(self.format(record)[:MAX_WARNING_CHARS])
            except Exception:  # a broken log call must not fail the mini-batch
                self.messages.append(str(record.msg)[:MAX_WARNING_CHARS])


def _configure_logging(config: WorkerConfig) -> _WarningCapture:
    """Log to stderr at the run's level; always capture WARNING+ for the summary."""
    level = getattr(logging, config.log_level.upper(), logging.INFO)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)s worker-{config.worker_id} %(name)s: %(message)s"
        )
    )
    capture = _WarningCapture(config.max_warnings)
    root.addHandler(console)
    root.addHandler(capture)
    root.setLevel(min(level, logging.WARNING))
    return capture


def load_entry_script(path: str):
    """Import the script by path as a top-level module, as Azure ML does from a code snapshot.

    Its folder goes first on ``sys.path`` (helpers beside it import); the module is named
    after the file unless that name is already taken by an imported module.
    """
    script = Path(path).resolve()
    folder = str(script.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = script.stem if script.stem not in sys.modules else f"_entry_script_{script.stem}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {script} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def wants_context(run) -> bool:
    """True for ``run(mini_batch, mini_batch_context)``, False for ``run(mini_batch)``."""
    try:
        parameters = inspect.signature(run).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    return len(positional) >= 2 or varargs


def describe_exception(exc: BaseException) -> str:
    """``Type: message (at file:line in function)``, the innermost frame of the traceback."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return text[:MAX_REASON_CHARS]


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Body of a worker process (the target of ``multiprocessing.Process``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    capture = _configure_logging(config)
    sys.argv = [config.entry_script, *config.program_arguments]
    started = time.perf_counter()
    try:
        module = load_entry_script(config.entry_script)
        init = getattr(module, "init", None)
        if callable(init):
            init()
        run = getattr(module, "run", None)
        if not callable(run):
            raise TypeError(f"{config.entry_script} defines no callable run()")
    except BaseException as exc:  # noqa: BLE001 - SystemExit from init() is a failure too
        conn.send(InitFailed(describe_exception(exc), traceback.format_exc()))
        return
    conn.send(Ready(time.perf_counter() - started))
    pass_context = wants_context(run)
    try:
        while True:
            message = conn.recv()
            if isinstance(message, Stop):
                break
            for task in message.tasks:
                conn.send(_process(task, run, pass_context, config, capture))
    except (EOFError, OSError):  # the parent is gone: nothing left to report to
        return
    shutdown_error = None
    shutdown = getattr(module, "shutdown", None)
    if callable(shutdown):
        try:
            shutdown()
        except BaseException as exc:  # noqa: BLE001
            shutdown_error = describe_exception(exc)
    try:
        conn.send(Stopped(shutdown_error, time.process_time()))
    except OSError:
        pass


def _process(task: MiniBatchTask, run, pass_context: bool, config, capture) -> MiniBatchResult:
    capture.reset()
    result = MiniBatchResult(index=task.index, attempt=task.attempt, ok=False, items_in=0)
    started = time.perf_counter()
    try:
        mini_batch = build_mini_batch(task)
        result.items_in = len(mini_batch)
    except Exception as exc:
        result.items_in = _fallback_items(task)
        result.reason = f"could not read {task.label}: {describe_exception(exc)}"
        log.error("mini-batch %d (%s): %s", task.index, task.label, result.reason)
        return _with_warnings(result, capture)
    read_done = time.perf_counter()
    result.read_seconds = read_done - started
    try:
        if pass_context:
            returned = run(mini_batch, MiniBatchContext(dict(task.keys), task.index))
        else:
            returned = run(mini_batch)
        result.items_returned = count_items(returned)
    except BaseException as exc:  # noqa: BLE001 - sys.exit() inside run() fails this batch only
        result.run_seconds = time.perf_counter() - read_done
        result.reason = describe_exception(exc)
        # One line (the reason names the file and line); the traceback for whoever asks for it
        log.error(
            "mini-batch %d (%s) attempt %d failed: %s",
            task.index,
            task.label,
            task.attempt + 1,
            result.reason,
        )
        log.debug("the traceback of mini-batch %d:\n%s", task.index, traceback.format_exc())
        return _with_warnings(result, capture)
    result.run_seconds = time.perf_counter() - read_done
    if config.sort_tabular_rows and result.items_returned > result.items_in:
        # One answer per input row: more rows than came in means rows answered twice (or rows
        # of something else); none of them can be trusted as this mini-batch's answer.
        result.reason = (
            f"returned {result.items_returned} rows for {result.items_in} in: "
            "each input row must be answered exactly once"
        )
        result.items_returned = 0
        return _with_warnings(result, capture)
    result.ok = result.items_returned >= result.items_in
    if not result.ok:
        result.reason = f"returned {result.items_returned} of {result.items_in} items"
    # Rows of a short attempt are shipped only when no retry follows (they are then kept).
    if config.keep_rows and result.items_returned and (result.ok or task.final):
        try:
            result.table = to_table(returned, sort_keys=config.sort_tabular_rows)
        except Exception as exc:
            result.ok = False
            result.reason = f"returned rows that cannot be tabulated: {describe_exception(exc)}"
    return _with_warnings(result, capture)


def build_mini_batch(task: MiniBatchTask):
    """What ``run()`` receives for ``task``: a DataFrame (tabular) or a list of paths (files)."""
    if task.kind == KIND_PARTITION:
        return read_partition(task.files, task.keys)
    if task.kind == KIND_FRAME:
        return task.frame
    if task.kind == KIND_FILES:
        return list(task.files)
    raise ValueError(f"unknown mini-batch kind {task.kind!r}")


def _fallback_items(task: MiniBatchTask) -> int:
    if task.items is not None:
        return task.items
    return (partition_row_count(task) or 0) if task.kind == KIND_PARTITION else 0


def _with_warnings(result: MiniBatchResult, capture: _WarningCapture) -> MiniBatchResult:
    result.warnings = list(capture.messages)
    result.warning_count = capture.count
    return result


# --- in the parent ----------------------------------------------------------------------


class WorkerHandle:
    """The parent's view of one worker: its process, pipe, state and assigned mini-batches."""

    def __init__(self, context, config: WorkerConfig, startup_timeout: float) -> None:
        self.config = config
        self.conn, child_conn = context.Pipe(duplex=True)
        self.process = context.Process(
            target=worker_main,
            args=(child_conn, config),
            name=f"scoring-runner-worker-{config.worker_id}",
        )
        self.process.start()
        child_conn.close()
        self._closed = False
        self.state = WorkerState.STARTING
        self.assigned: deque[MiniBatchTask] = deque()
        self.deadline: float | None = time.monotonic() + startup_timeout

    @property
    def worker_id(self) -> int:
        return self.config.worker_id

    def send_tasks(self, tasks: list[MiniBatchTask], timeout: float) -> bool:
        """Hand tasks over; False (nothing assigned) if the worker is already gone."""
        try:
            self.conn.send(Tasks(tasks))
        except OSError:  # BrokenPipeError: it died while idle
            return False
        self.assigned.extend(tasks)
        self.state = WorkerState.BUSY
        self.deadline = time.monotonic() + timeout
        return True

    def task_done(self, timeout: float) -> MiniBatchTask | None:
        """The head task finished: the next one's clock starts now."""
        task = self.assigned.popleft() if self.assigned else None
        if self.assigned:
            self.deadline = time.monotonic() + timeout
        else:
            self.state, self.deadline = WorkerState.IDLE, None
        return task

    def stop(self, timeout: float) -> None:
        self.state = WorkerState.STOPPING
        self.deadline = time.monotonic() + timeout
        try:
            self.conn.send(Stop())
        except OSError:
            pass

    def receive_all(self) -> list[object]:
        """Every message already waiting; a :class:`PipeClosed` last if the pipe ended."""
        messages = []
        try:
            while self.conn.poll():
                messages.append(self.conn.recv())
        except (EOFError, OSError):
            messages.append(PipeClosed())
        return messages

    def kill(self) -> None:
        if self._closed:
            return
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=10)

    def close(self) -> None:
        """Kill if still running and release the pipe and process handles (idempotent)."""
        if self._closed:
            return
        self.kill()
        self.conn.close()
        if self.process.exitcode is not None:
            self.process.close()
        self._closed = True

    def exit_description(self) -> str:
        """ "worker died with exit code 3" / "worker died with signal SIGKILL"."""
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is None:
            return "worker stopped responding"
        if code < 0:
            try:
                return f"worker died with signal {signal.Signals(-code).name}"
            except ValueError:
                return f"worker died with signal {-code}"
        return f"worker died with exit code {code}"

    @property
    def pid(self) -> int | None:
        return self.process.pid
