"""Orchestration: hand mini-batches to worker processes, retry, count, publish.

The rules are Azure ML's parallel job's: a mini-batch that raises, times out, returns
fewer items than it got, or whose worker dies is retried up to ``max_retries`` times and
then counts as failed; failed items = inputs - items returned; a run whose failed items
exceed ``error_threshold`` or whose failed mini-batches exceed
``mini_batch_error_threshold`` (-1 ignores either) stops early and fails.

Differences from Azure, on purpose: the default timeout is 300 s (not 60 s); ``init()``
that raises or hangs fails the whole run at once with its reason (instead of retry storms
and "SystemExit: 42"), while a worker killed during ``init()`` is replaced up to
:data:`INIT_DEATHS_FAILING_THE_RUN` deaths; rows are delivered exactly once, in mini-batch
order.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime
from multiprocessing.connection import wait
from pathlib import Path

from scoring.data.files import write_json
from scoring.progress import progress_bar
from scoring.runner import output_folder
from scoring.runner.contract import InvalidSettingsError, RunSettings
from scoring.runner.inputs import (
    KIND_PARTITION,
    InputPlan,
    MiniBatchTask,
    input_kind,
    partition_row_count,
    plan_input,
)
from scoring.runner.output import (
    SUMMARY_FILE,
    OrderedRowSpool,
    SchemaMismatchError,
    kept_predictions,
    predictions_path,
    remove_stale_predictions,
)
from scoring.runner.output_folder import HeldFolder
from scoring.runner.processes import start_method, worker_context
from scoring.runner.summary import (
    EMPTY_WINDOW,
    FAILED,
    INCOMPLETE,
    INTERRUPTED,
    SUCCEEDED,
    MiniBatchRecord,
    RunSummary,
    Threshold,
    format_summary,
)
from scoring.runner.workers import (
    InitFailed,
    MiniBatchResult,
    PipeClosed,
    Ready,
    Stopped,
    WorkerConfig,
    WorkerHandle,
    WorkerState,
)

log = logging.getLogger("scoring.runner")

#: most mini-batches sent to a worker in one message (amortises IPC for small partitions)
MAX_TASKS_PER_MESSAGE = 32
#: longest wait in the event loop, so progress and deadlines stay fresh
POLL_SECONDS = 0.5
MAX_KEPT_WARNINGS = 5
#: workers that may die during init() (killed: e.g. the OOM killer; an init() that raises
#: fails the run at once) before the run fails; each death before this is replaced
INIT_DEATHS_FAILING_THE_RUN = 3


def run_parallel(settings: RunSettings) -> RunSummary:
    """Run ``settings.entry_script`` over ``settings.input_path``; write output and summary.

    Raises :class:`~scoring.runner.contract.InvalidSettingsError` for bad settings or input
    (before any worker starts). A run that fails a threshold returns a summary with
    ``status == "failed"`` (``exit_code == 1``), publishes nothing and leaves the last good
    predictions in place; a folder another run holds or that cannot be written raises
    :class:`~scoring.runner.contract.InvalidSettingsError` too.
    """
    started_at = datetime.now(UTC)
    wall_start = time.perf_counter()
    size = settings.validate()
    settings = replace(settings, entry_script=settings.entry_script.resolve())
    with output_folder.hold(settings.output_dir, SUMMARY_FILE) as held:
        for note in held.notes:
            log.warning(note)
        try:
            plan = plan_input(settings.input_path, size, entry_script=settings.entry_script)
        except InvalidSettingsError as exc:  # e.g. a missing column: the run says so too
            _Run.refused(settings, held, str(exc)).finish(started_at, wall_start)
            raise
        except KeyboardInterrupt as exc:  # before any mini-batch: the summary still says so
            _Run.interrupted_early(settings, held, exc).finish(started_at, wall_start)
            raise
        enumerate_seconds = time.perf_counter() - wall_start
        for note in plan.notes:
            log.warning(note)
        log.info(
            "%d mini-batch(es) on %d worker(s)",
            len(plan.tasks),
            _workers_used(settings.workers, len(plan.tasks)),
        )
        run = _Run(settings, plan, held)
        run.timings["enumerate"] = enumerate_seconds
        interrupted: KeyboardInterrupt | None = None
        try:
            run.execute()
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (scoring.errors.Terminated)
            interrupted = exc
            run.interrupt(exc)
        except BaseException:
            if run.spool is not None:  # a bug, not a verdict: leave no temporary files behind
                run.spool.discard()
            raise
        finally:
            run.close_workers()
        summary = run.finish(started_at, wall_start)
    if summary.status in (FAILED, INCOMPLETE):
        log.error("run %s: %s", summary.status, summary.failure)
        for record in summary.worst_offenders():
            log.error("  %s", record.one_line())
    if interrupted is not None:  # the command line reports it in one line (130 or 143)
        raise interrupted
    log.info("summary written to %s", settings.output_dir / SUMMARY_FILE)
    return summary


class _Run:
    """State of one run: queues, workers, records, output spool."""

    def __init__(self, settings: RunSettings, plan: InputPlan, held: HeldFolder) -> None:
        self.settings = settings
        self.plan = plan
        self.held = held
        self.tasks = {task.index: task for task in plan.tasks}
        self.records = {
            task.index: MiniBatchRecord(task.index, task.label, items_in=task.items or 0)
            for task in plan.tasks
        }
        self.new: deque[MiniBatchTask] = deque(plan.tasks)
        self.retries: deque[MiniBatchTask] = deque()
        self.workers: list[WorkerHandle] = []
        self.worker_starts = 0
        self.init_deaths = 0
        self.context = worker_context()
        self.spool = (
            OrderedRowSpool(settings.output_dir, schema=settings.output_schema)
            if settings.append_rows
            else None
        )
        self.error_threshold = Threshold("error_threshold", settings.error_threshold)
        self.mini_batch_error_threshold = Threshold(
            "mini_batch_error_threshold", settings.mini_batch_error_threshold
        )
        self.error_threshold.count = plan.unassigned_items
        self.failure: str | None = None
        #: the signal that interrupted the run (SIGINT or SIGTERM), if one did
        self.interrupted_by: str | None = None
        self.cpu_start = time.process_time()
        self.notes: list[str] = [*held.notes, *plan.notes]
        self.shutdown_errors: list[str] = []
        self.timings: dict[str, float] = dict.fromkeys(
            ("enumerate", "init", "read", "run", "write", "scoring_wall", "total"), 0.0
        )
        #: CPU seconds of the parent and of the workers that stopped normally
        self.cpu_seconds: dict[str, float] = dict.fromkeys(("parent", "workers"), 0.0)
        self.progress = (
            progress_bar(total=len(plan.tasks), desc="scoring", unit="mini-batch", logger=log)
            if settings.show_progress and plan.tasks
            else None
        )
        self._check_thresholds()

    @classmethod
    def refused(cls, settings: RunSettings, held: HeldFolder, reason: str) -> _Run:
        """A run that started (it holds its folder) but whose input was refused before any
        mini-batch: it fails with ``reason``, and its summary says so like any failed run's."""
        run = cls(settings, InputPlan(kind=input_kind(settings.input_path), tasks=[]), held)
        run.failure = f"input refused: {reason}"
        return run

    @classmethod
    def interrupted_early(
        cls, settings: RunSettings, held: HeldFolder, exc: KeyboardInterrupt
    ) -> _Run:
        """A run interrupted while its input was being listed: no mini-batch ran."""
        run = cls(settings, InputPlan(kind=input_kind(settings.input_path), tasks=[]), held)
        run.interrupt(exc)
        return run

    def interrupt(self, exc: KeyboardInterrupt) -> None:
        """Ctrl-C or SIGTERM: the run ends as interrupted (not failed: nothing was wrong with
        it), publishes nothing and keeps the last good output."""
        from scoring.errors import Terminated

        self.interrupted_by = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        self.failure = f"interrupted ({self.interrupted_by})"

    # --- the loop ---------------------------------------------------------------------

    def execute(self) -> None:
        loop_start = time.perf_counter()
        try:
            if self.failure is None and self.tasks:
                for _ in range(min(self.settings.workers, len(self.tasks))):
                    self._start_worker()
                while self.failure is None and (self._queued() or self._in_flight()):
                    self._dispatch()
                    self._wait_and_handle()
                    self._enforce_deadlines()
                if self.failure is None:
                    self._stop_workers()
        finally:
            if self.progress is not None:
                self.progress.close()
            self.timings["scoring_wall"] = time.perf_counter() - loop_start

    def _queued(self) -> bool:
        return bool(self.retries or self.new)

    def _in_flight(self) -> bool:
        return any(worker.assigned for worker in self.workers)

    def _start_worker(self) -> None:
        self.worker_starts += 1
        config = WorkerConfig(
            worker_id=self.worker_starts,
            entry_script=str(self.settings.entry_script),
            program_arguments=list(self.settings.program_arguments),
            log_level=self.settings.log_level.upper(),
            keep_rows=self.settings.append_rows,
            sort_tabular_rows=self.plan.tabular,
            max_warnings=MAX_KEPT_WARNINGS,
        )
        self.workers.append(
            WorkerHandle(self.context, config, self.settings.effective_init_timeout)
        )

    def _dispatch(self) -> None:
        for worker in list(self.workers):
            if worker.state != WorkerState.IDLE or not self._queued():
                continue
            tasks = [self._take() for _ in range(self._chunk_size())]
            tasks = [task for task in tasks if task is not None]
            for task in tasks:
                attempts = self.records[task.index].attempts
                task.attempt = attempts
                task.final = attempts >= self.settings.max_retries
            if not worker.send_tasks(tasks, self.settings.timeout_seconds):
                # it died idle: nothing of these tasks ran, so they go back without penalty
                self.new.extendleft(reversed(tasks))
                log.warning("worker %d: %s", worker.worker_id, worker.exit_description())
                self._retire(worker)
                self._start_worker()

    def _take(self) -> MiniBatchTask | None:
        if self.retries:
            return self.retries.popleft()
        if self.new:
            return self.new.popleft()
        return None

    def _chunk_size(self) -> int:
        """Several mini-batches per message when many are left, one when few are."""
        queued = len(self.retries) + len(self.new)
        per_worker = math.ceil(queued / (4 * max(1, len(self.workers))))
        return max(1, min(MAX_TASKS_PER_MESSAGE, per_worker))

    def _wait_and_handle(self) -> None:
        deadlines = [w.deadline for w in self.workers if w.deadline is not None]
        timeout = POLL_SECONDS
        if deadlines:
            timeout = min(timeout, max(0.0, min(deadlines) - time.monotonic()))
        by_handle = {}
        for worker in self.workers:
            by_handle[worker.conn] = worker
            by_handle[worker.process.sentinel] = worker
        ready = wait(list(by_handle), timeout=timeout)
        touched = []
        for handle in ready:
            worker = by_handle[handle]
            if worker not in touched:
                touched.append(worker)
        for worker in touched:
            closed = False
            for message in worker.receive_all():
                if isinstance(message, PipeClosed):
                    closed = True
                else:
                    self._on_message(worker, message)
                if self.failure is not None:
                    return
            if closed or not worker.process.is_alive():
                self._on_worker_exit(worker)
                if self.failure is not None:
                    return

    def _on_message(self, worker: WorkerHandle, message: object) -> None:
        if isinstance(message, Ready):
            self.timings["init"] += message.init_seconds
            worker.state, worker.deadline = WorkerState.IDLE, None
        elif isinstance(message, InitFailed):
            log.error("init() failed in worker %d: %s", worker.worker_id, message.reason)
            log.debug("the traceback of init() in worker %d:\n%s", worker.worker_id,
                      message.traceback)  # fmt: skip
            self.failure = (
                f"init() of {self.settings.entry_script.name} failed in worker "
                f"{worker.worker_id}: {message.reason}"
            )
        elif isinstance(message, MiniBatchResult):
            task = worker.task_done(self.settings.timeout_seconds)
            if task is None or task.index != message.index:
                raise RuntimeError(f"worker {worker.worker_id} answered an unexpected mini-batch")
            self._on_result(task, message)
        elif isinstance(message, Stopped):
            self.cpu_seconds["workers"] += message.cpu_seconds
            if message.shutdown_error:
                self.shutdown_errors.append(f"worker {worker.worker_id}: {message.shutdown_error}")
            worker.state, worker.deadline = WorkerState.STOPPED, None

    def _on_worker_exit(self, worker: WorkerHandle) -> None:
        description = worker.exit_description()
        self._retire(worker)
        if worker.state == WorkerState.STOPPED:
            return
        if worker.state == WorkerState.STARTING:
            self._on_death_in_init(worker, description)
            return
        if worker.state == WorkerState.STOPPING:
            self.shutdown_errors.append(f"worker {worker.worker_id}: {description} in shutdown()")
            return
        log.warning("worker %d: %s", worker.worker_id, description)
        self._lose_assigned(worker, description)

    def _on_death_in_init(self, worker: WorkerHandle, description: str) -> None:
        """A worker died before it was ready (it held no mini-batch): replace it, up to a
        bound, since a machine short of memory may kill a worker that loads models."""
        self.init_deaths += 1
        script = self.settings.entry_script.name
        if self.init_deaths >= INIT_DEATHS_FAILING_THE_RUN:
            self.failure = (
                f"{self.init_deaths} workers died during init() of {script}, the last "
                f"(worker {worker.worker_id}): {description}"
            )
            return
        note = f"worker {worker.worker_id} died during init() of {script} ({description})"
        log.warning("%s; starting another", note)
        self.notes.append(f"{note}: replaced")
        if self._queued():
            self._start_worker()

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.deadline is None or worker.deadline > now or self.failure is not None:
                continue
            if worker.conn.poll():  # its answer arrived just now: read it before judging
                continue
            limit = f"{self.settings.timeout_seconds:g}s"
            worker.kill()
            self._retire(worker)
            if worker.state == WorkerState.STARTING:
                self.failure = (
                    f"init() of {self.settings.entry_script.name} did not finish within "
                    f"{self.settings.effective_init_timeout:g}s (worker {worker.worker_id})"
                )
            elif worker.state == WorkerState.STOPPING:
                self.shutdown_errors.append(
                    f"worker {worker.worker_id}: shutdown() did not finish within {limit}"
                )
            else:
                log.warning("worker %d: mini-batch timed out after %s", worker.worker_id, limit)
                self._lose_assigned(worker, f"timed out after {limit}")

    def _retire(self, worker: WorkerHandle) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        worker.close()

    def _lose_assigned(self, worker: WorkerHandle, reason: str) -> None:
        """The worker's current mini-batch failed; the rest of its queue goes back untouched."""
        if worker.assigned:
            current = worker.assigned.popleft()
            for task in reversed(worker.assigned):
                self.new.appendleft(task)
            worker.assigned.clear()
            self._attempt_failed(current, reason)
        if self.failure is None and self._queued():
            self._start_worker()

    # --- accounting -------------------------------------------------------------------

    def _on_result(self, task: MiniBatchTask, result: MiniBatchResult) -> None:
        record = self.records[task.index]
        record.attempts += 1
        record.items_in = result.items_in
        record.warnings = result.warnings[:MAX_KEPT_WARNINGS]
        record.warning_count = result.warning_count
        self.timings["read"] += result.read_seconds
        self.timings["run"] += result.run_seconds
        if result.ok:
            record.items_returned = result.items_returned
            self._finish(task, record, SUCCEEDED, result.table)
            return
        record.reasons.append(result.reason or "failed")
        if record.attempts > self.settings.max_retries:
            record.items_returned = result.items_returned  # a short last attempt keeps its rows
            self._finish(task, record, FAILED, result.table)
        else:
            self.retries.append(task)

    def _attempt_failed(self, task: MiniBatchTask, reason: str) -> None:
        record = self.records[task.index]
        record.attempts += 1
        record.reasons.append(reason)
        if not record.items_in and task.kind == KIND_PARTITION:
            record.items_in = partition_row_count(task) or 0
        if record.attempts > self.settings.max_retries:
            record.items_returned = 0
            self._finish(task, record, FAILED, None)
        else:
            self.retries.append(task)

    def _finish(self, task: MiniBatchTask, record: MiniBatchRecord, status: str, table) -> None:
        if self.spool is not None:
            started = time.perf_counter()
            try:
                self.spool.add(task.index, table)
            except SchemaMismatchError as exc:
                self.spool.add(task.index, None)
                status = FAILED
                record.items_returned = 0
                record.reasons.append(str(exc))
            self.timings["write"] += time.perf_counter() - started
        record.status = status
        task.frame = None  # release the partition's data in the parent
        if status == FAILED:
            self.mini_batch_error_threshold.count += 1
        self.error_threshold.count += record.items_failed
        if self.progress is not None:
            self.progress.update(1)
        self._check_thresholds()

    def _check_thresholds(self) -> None:
        if self.failure is not None:
            return
        for threshold in (self.error_threshold, self.mini_batch_error_threshold):
            if threshold.exceeded:
                self.failure = (
                    f"{threshold.name} exceeded: {threshold.count} {threshold.unit} "
                    f"> {threshold.value}"
                )
                log.error("%s; stopping the run", self.failure)
                return

    # --- the end ----------------------------------------------------------------------

    def _stop_workers(self) -> None:
        """Ask every worker for shutdown(); wait for them within the timeout."""
        for worker in list(self.workers):
            if worker.state == WorkerState.IDLE:
                worker.stop(self.settings.timeout_seconds)
            else:  # still starting and nothing left to do
                worker.kill()
                self._retire(worker)
        while self.workers:
            self._wait_and_handle()
            for worker in list(self.workers):
                if worker.state == WorkerState.STOPPED:
                    worker.process.join(timeout=self.settings.timeout_seconds)
                    self._retire(worker)
            self._enforce_deadlines()

    def close_workers(self) -> None:
        for worker in list(self.workers):
            self._retire(worker)

    def finish(self, started_at: datetime, wall_start: float) -> RunSummary:
        settings = self.settings
        status = SUCCEEDED if self.failure is None else FAILED
        if self.interrupted_by is not None:
            status = INTERRUPTED
        items_in = sum(record.items_in for record in self.records.values())
        if status == SUCCEEDED and self.plan.tabular and not items_in + self.plan.unassigned_items:
            status = EMPTY_WINDOW
        lost = sum(r.items_failed for r in self.records.values()) + self.plan.unassigned_items
        if status == SUCCEEDED and lost:  # a run succeeds only when every item came back
            status = INCOMPLETE
            self.failure = (
                f"{lost} of {items_in + self.plan.unassigned_items} items did not come back "
                "(within the thresholds: the rest are published)"
            )
        predictions_file = None
        rows_written = 0
        kept = None
        started = time.perf_counter()
        if status in (FAILED, INTERRUPTED):  # the last good output stays until a new one is in
            if self.spool is not None:
                self.spool.discard()
            kept = kept_predictions(settings.output_dir, self.held.previous_summary)
            self.notes.append(_failed_run_note(kept, status))
        elif self.spool is not None:
            destination = predictions_path(settings.output_dir, settings.output_format)
            rows_written = self.spool.publish(destination, settings.output_format)
            predictions_file = str(destination)
            stale = remove_stale_predictions(settings.output_dir, keep=destination)
            self.notes.extend(f"removed {path.name} of an earlier run" for path in stale)
        else:  # summary only: an earlier run's predictions must not pass for this run's
            stale = remove_stale_predictions(settings.output_dir)
            self.notes.extend(f"removed {path.name} of an earlier run" for path in stale)
        self.timings["write"] += time.perf_counter() - started
        self.timings["total"] = time.perf_counter() - wall_start
        self.cpu_seconds["parent"] = time.process_time() - self.cpu_start
        summary = RunSummary(
            status=status,
            failure=self.failure,
            entry_script=str(_display_path(settings.entry_script)),
            program_arguments=list(settings.program_arguments),
            input=str(settings.input_path),
            input_kind=self.plan.kind,
            output_dir=str(settings.output_dir),
            append_rows=settings.append_rows,
            output_format=settings.output_format,
            predictions_file=predictions_file,
            rows_written=rows_written,
            workers=_workers_used(settings.workers, len(self.tasks)),
            worker_starts=self.worker_starts,
            start_method=self.context.get_start_method(),
            mini_batch_size=str(settings.mini_batch_size),
            timeout_seconds=settings.timeout_seconds,
            max_retries=settings.max_retries,
            records=[self.records[index] for index in sorted(self.records)],
            unassigned_items=self.plan.unassigned_items,
            error_threshold=self.error_threshold,
            mini_batch_error_threshold=self.mini_batch_error_threshold,
            timings_seconds=self.timings,
            cpu_seconds=self.cpu_seconds,
            started_at=started_at.isoformat(timespec="seconds"),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            notes=self.notes,
            shutdown_errors=self.shutdown_errors,
            kept_predictions=kept,
        )
        write_json(summary.to_dict(), settings.output_dir / SUMMARY_FILE)
        return summary


def _workers_used(workers: int, tasks: int) -> int:
    """Worker processes a run starts: no more than it has mini-batches (the log and the summary
    say the same number)."""
    return min(workers, max(1, tasks))


def _failed_run_note(kept: dict | None, status: str = FAILED) -> str:
    ended = "was interrupted" if status == INTERRUPTED else "failed"
    if kept is None:
        return f"the run {ended}: no predictions file was published"
    origin = kept.get("published_by_run_started_at")
    by = f"the run started at {origin}" if origin else "an earlier run"
    return f"the run {ended}: nothing was published; {kept['file']} of {by} is left in place"


def _display_path(path: Path) -> Path:
    """Relative to the working folder when inside it (summaries stay machine-independent)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


__all__ = ["format_summary", "run_parallel", "start_method"]
