"""The run's account: per-mini-batch records, totals, thresholds, timings, and their text form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from scoring.errors import EXIT_EMPTY, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

MAX_LISTED_FAILURES = 1000
MAX_LISTED_WARNINGS = 100
WORST_OFFENDERS = 5

SUCCEEDED, FAILED, PENDING = "succeeded", "failed", "pending"
#: a run's status when its tabular input held no rows at all: an ingestion outage upstream
#: should show, not pass as a green run
EMPTY_WINDOW = "empty_window"
#: Ctrl-C or SIGTERM ended the run: nothing published, the last good output kept (the command
#: exits 130 or 143, :func:`scoring.errors.interruption_exit_code`)
INTERRUPTED = "interrupted"
#: thresholds tolerated its failed items, so its rows are published; but not every row came
#: back, and a run succeeds only when every row did
INCOMPLETE = "incomplete"
EXIT_CODES = {
    SUCCEEDED: EXIT_OK,
    EMPTY_WINDOW: EXIT_EMPTY,
    FAILED: EXIT_FAILED,
    INCOMPLETE: EXIT_FAILED,
    INTERRUPTED: EXIT_INTERRUPTED,
}


@dataclass
class MiniBatchRecord:
    """What happened to one mini-batch over all its attempts."""

    index: int
    label: str
    items_in: int = 0
    items_returned: int = 0
    attempts: int = 0
    status: str = PENDING
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    @property
    def items_failed(self) -> int:
        """Items of a mini-batch that ran and did not come back (one never run: 0, it counts
        as not run)."""
        if self.status == PENDING:
            return 0
        return max(0, self.items_in - self.items_returned)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["items_failed"] = self.items_failed
        return data

    def one_line(self) -> str:
        reason = self.reasons[-1] if self.reasons else "no reason recorded"
        tries = "attempt" if self.attempts == 1 else "attempts"
        return (
            f"#{self.index} {self.label}: {self.items_failed} of {self.items_in} items failed, "
            f"{self.attempts} {tries}: {reason}"
        )


@dataclass
class Threshold:
    """``error_threshold`` or ``mini_batch_error_threshold`` with the count it is compared to."""

    name: str
    value: int
    count: int = 0

    @property
    def exceeded(self) -> bool:
        return self.value != -1 and self.count > self.value

    @property
    def unit(self) -> str:
        return "failed items" if self.name == "error_threshold" else "failed mini-batches"

    def describe(self) -> str:
        if self.value == -1:
            return f"{self.name} -1 (ignored; {self.count} {self.unit})"
        state = "EXCEEDED" if self.exceeded else "ok"
        return f"{self.name} {self.value}: {state} ({self.count} {self.unit})"

    def to_dict(self) -> dict:
        return {"value": self.value, "count": self.count, "exceeded": self.exceeded}


@dataclass
class RunSummary:
    """Everything ``summary.json`` holds; ``exit_code`` is what the CLI returns."""

    status: str
    failure: str | None
    entry_script: str
    program_arguments: list[str]
    input: str
    input_kind: str
    output_dir: str
    append_rows: bool
    output_format: str
    predictions_file: str | None
    rows_written: int
    workers: int
    worker_starts: int
    start_method: str
    mini_batch_size: str
    timeout_seconds: float
    max_retries: int
    records: list[MiniBatchRecord]
    unassigned_items: int
    error_threshold: Threshold
    mini_batch_error_threshold: Threshold
    timings_seconds: dict[str, float]
    cpu_seconds: dict[str, float]
    started_at: str
    finished_at: str
    notes: list[str] = field(default_factory=list)
    shutdown_errors: list[str] = field(default_factory=list)
    #: the earlier run's predictions a failed run left in place (see output.kept_predictions)
    kept_predictions: dict | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def failed_records(self) -> list[MiniBatchRecord]:
        return [r for r in self.records if r.status == FAILED]

    @property
    def items_in(self) -> int:
        return sum(r.items_in for r in self.records) + self.unassigned_items

    @property
    def items_returned(self) -> int:
        return sum(r.items_returned for r in self.records)

    @property
    def items_failed(self) -> int:
        return sum(r.items_failed for r in self.records) + self.unassigned_items

    @property
    def items_not_run(self) -> int:
        """Items of mini-batches never finished (the run stopped or was interrupted first)."""
        return sum(r.items_in for r in self.records if r.status == PENDING)

    def worst_offenders(self, limit: int = WORST_OFFENDERS) -> list[MiniBatchRecord]:
        """Mini-batches that lost items or failed, most items lost first."""
        hurt = [r for r in self.records if r.status == FAILED or r.items_failed]
        return sorted(hurt, key=lambda r: (-r.items_failed, r.index))[:limit]

    def to_dict(self) -> dict:
        counts = {SUCCEEDED: 0, FAILED: 0, PENDING: 0}
        for record in self.records:
            counts[record.status] += 1
        failed = self.failed_records
        warned = [r for r in self.records if r.warning_count and r.status != FAILED]
        return {
            "status": self.status,
            "failure": self.failure,
            "entry_script": self.entry_script,
            "program_arguments": self.program_arguments,
            "input": self.input,
            "input_kind": self.input_kind,
            "output": {
                "folder": self.output_dir,
                "mode": "append_rows" if self.append_rows else "summary_only",
                "format": self.output_format,
                "published": self.predictions_file is not None,
                "predictions_file": self.predictions_file,
                "rows_written": self.rows_written,
                "kept_predictions": self.kept_predictions,
            },
            "workers": {
                "count": self.workers,
                "processes_started": self.worker_starts,
                "start_method": self.start_method,
            },
            "settings": {
                "mini_batch_size": self.mini_batch_size,
                "timeout_seconds": self.timeout_seconds,
                "max_retries": self.max_retries,
            },
            "mini_batches": {
                "total": len(self.records),
                "succeeded": counts[SUCCEEDED],
                "failed": counts[FAILED],
                "not_run": counts[PENDING],
                "retried": sum(1 for r in self.records if r.attempts > 1),
            },
            "items": {
                "in": self.items_in,
                "returned": self.items_returned,
                "failed": self.items_failed,
                "not_run": self.items_not_run,
                "unassigned": self.unassigned_items,
            },
            "thresholds": {
                "error_threshold": self.error_threshold.to_dict(),
                "mini_batch_error_threshold": self.mini_batch_error_threshold.to_dict(),
            },
            "timings_seconds": {k: round(v, 4) for k, v in self.timings_seconds.items()},
            "cpu_seconds": {k: round(v, 4) for k, v in self.cpu_seconds.items()},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "failed_mini_batches": [r.to_dict() for r in failed[:MAX_LISTED_FAILURES]],
            "failed_mini_batches_not_listed": max(0, len(failed) - MAX_LISTED_FAILURES),
            "worst_offenders": [r.one_line() for r in self.worst_offenders()],
            "mini_batches_with_warnings": [r.to_dict() for r in warned[:MAX_LISTED_WARNINGS]],
            "mini_batches_with_warnings_not_listed": max(0, len(warned) - MAX_LISTED_WARNINGS),
            "notes": self.notes,
            "shutdown_errors": self.shutdown_errors,
        }


def format_summary(summary: RunSummary) -> str:
    """A short human-readable block (what the CLI prints)."""
    data = summary.to_dict()
    batches, items, timings = data["mini_batches"], data["items"], data["timings_seconds"]
    headline = {
        SUCCEEDED: "succeeded",
        EMPTY_WINDOW: "found an EMPTY WINDOW: the input holds no rows (exit code 3)",
        INCOMPLETE: f"INCOMPLETE: {summary.failure}",
        INTERRUPTED: f"was INTERRUPTED: {summary.failure}",
    }.get(summary.status, f"FAILED: {summary.failure}")
    output = data["output"]["predictions_file"] or (
        "no predictions written" if summary.append_rows else "summary only"
    )
    lines = [
        f"scoring run {headline}",
        f"  input         {summary.input} ({summary.input_kind})",
        f"  entry script  {summary.entry_script}",
        f"  workers       {summary.workers} ({summary.worker_starts} processes started, "
        f"{summary.start_method})",
        f"  mini-batches  {batches['total']} total, {batches['succeeded']} succeeded, "
        f"{batches['failed']} failed, {batches['retried']} retried, {batches['not_run']} not run",
        f"  items         {items['in']} in, {items['returned']} returned, {items['failed']} failed"
        + (f", {items['not_run']} not run" if items["not_run"] else ""),
        f"  thresholds    {summary.error_threshold.describe()}; "
        f"{summary.mini_batch_error_threshold.describe()}",
        f"  output        {output} ({summary.rows_written} rows)",
        "  time          "
        + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in timings.items()),
        "  cpu           "
        + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in data["cpu_seconds"].items()),
    ]
    offenders = summary.worst_offenders()
    if offenders:
        lines.append("  worst offenders:")
        lines.extend(f"    {record.one_line()}" for record in offenders)
    lines.extend(f"  note: {note}" for note in summary.notes)
    return "\n".join(lines)
