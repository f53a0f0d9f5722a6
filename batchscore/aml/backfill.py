"""Close a gap of windows: one run of the deployed scoring pipeline per window of its schedule.

``batchscore pipeline backfill --from T1 --to T2`` lists the window ends the schedule's cron
would have fired at in ``[T1, T2]`` (in the schedule's time zone), leaves out the windows whose
run summary is already in the predictions container (unless ``--force``), and submits the
schedule's own job for each of the rest with ``trigger_time`` set to that end
(:func:`batchscore.aml.run.submit`), at most ``max_parallel`` at a time. It follows every run
(each state change is printed), and ends with one line per window: its status, the rows
published and the first real error of a failed run (:func:`batchscore.aml.run.explain`).

A re-run of a window replaces its predictions (the publish step writes one path per window),
so ``--force`` never duplicates. Waiting is bounded: after ``timeout_seconds`` the runs still
going are reported as such (and keep running in Azure), the windows not yet submitted as not
submitted; nothing is claimed that did not happen.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from batchscore.aml.run import (
    SUCCEEDED,
    RunReport,
    explain,
    poll,
    read_schedule,
    status_text,
    submit,
)
from scoring.errors import BatchscoreError, UsageError
from scoring.steps.extract import zone_info
from scoring.steps.publish import EMPTY_WINDOW, window_folder

#: more windows than this in one command is almost surely a mistake in --from/--to
MAX_WINDOWS = 1000
SKIPPED = "published"  # the status of a window left out because its summary is there
NOT_SUBMITTED = "not submitted"
#: publish outcomes that close a window (an empty window is a real, alerting, outcome)
CLOSED = {"succeeded", EMPTY_WINDOW}


@dataclass
class Window:
    """One window of the gap and what became of it."""

    end: str  # ISO 8601 UTC, as submitted as trigger_time
    folder: str  # window=<end>, the publish step's folder
    status: str = "pending"
    job_name: str | None = None
    rows: int | None = None
    error: str | None = None

    @property
    def closed(self) -> bool:
        return self.status == SKIPPED or self.status in CLOSED


def window_ends(
    expression: str, time_zone: str, start: pd.Timestamp, end: pd.Timestamp
) -> list[str]:
    """The times in ``[start, end]`` (naive UTC) at which the cron ``expression`` fires in
    ``time_zone`` (a schedule's IANA or Windows zone name), as ISO 8601 UTC strings."""
    from croniter import croniter

    if end < start:
        raise UsageError(f"--from {start.isoformat()} is after --to {end.isoformat()}")
    zone = zone_info(time_zone)
    first = start.tz_localize("UTC").tz_convert(zone).to_pydatetime()
    last = end.tz_localize("UTC").tz_convert(zone).to_pydatetime()
    times = croniter(expression, first, ret_type=datetime)
    found: list[str] = []
    if croniter.match(expression, first):
        found.append(_iso(first))
    while True:
        fired = times.get_next(datetime)
        if fired > last:
            return found
        found.append(_iso(fired))
        if len(found) > MAX_WINDOWS:
            raise UsageError(
                f"--from/--to span more than {MAX_WINDOWS} windows of '{expression}': "
                "backfill a shorter gap at a time"
            )


def _iso(moment: datetime) -> str:
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_cadence(client: Any, schedule_name: str) -> tuple[str, str]:
    """(cron expression, time zone) of the deployed schedule."""
    trigger = getattr(read_schedule(client, schedule_name), "trigger", None)
    expression = getattr(trigger, "expression", None)
    if not expression:
        raise UsageError(
            f"schedule {schedule_name!r} has no cron trigger; backfill follows a cron cadence"
        )
    zone = getattr(trigger, "time_zone", None) or "UTC"
    return str(expression), str(getattr(zone, "value", zone))


def plan(ends: list[str], published: set[str], *, force: bool) -> list[Window]:
    """The windows of ``ends``; those with a summary in ``published`` are skipped unless
    ``force``."""
    windows = [Window(end, window_folder(end)) for end in ends]
    if not force:
        for window in windows:
            if window.folder in published:
                window.status = SKIPPED
    return windows


def run_windows(
    client: Any,
    schedule_name: str,
    windows: list[Window],
    *,
    max_parallel: int,
    poll_seconds: float,
    timeout_seconds: float,
    on_change: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Window]:
    """Submit every pending window, at most ``max_parallel`` runs at a time, and follow them
    until they end or ``timeout_seconds`` pass; fills in each window's outcome."""
    if max_parallel < 1:
        raise UsageError(f"--max-parallel {max_parallel}: must be at least 1")
    pending = [w for w in windows if w.status == "pending"]
    active: dict[str, tuple[Window, RunReport]] = {}
    deadline = time.monotonic() + timeout_seconds
    with tempfile.TemporaryDirectory(prefix="batchscore-backfill-") as work:
        while pending or active:
            while pending and len(active) < max_parallel:
                window = pending.pop(0)
                try:
                    job = submit(client, schedule_name, window.end, purpose="backfill")
                except BatchscoreError as exc:
                    # The next submission would meet the same refusal: stop submitting.
                    window.status, window.error = "submit failed", str(exc)
                    for rest in pending:
                        rest.status = NOT_SUBMITTED
                    pending = []
                    break
                window.job_name, window.status = job.name, status_text(job.status)
                active[job.name] = (window, RunReport(job.name, status=window.status))
                on_change(f"submitted {job.name} (window ending {window.end})")
            for name, (window, report) in list(active.items()):
                if poll(client, report, on_change):
                    _close(client, window, report, Path(work) / name)
                    del active[name]
            if not pending and not active:
                break
            if time.monotonic() > deadline:
                for window, report in active.values():
                    window.status = f"still {report.status}"
                    window.error = "not followed further (--timeout-minutes); still in Azure"
                for window in pending:
                    window.status = NOT_SUBMITTED
                break
            sleep(poll_seconds)
    return windows


def _close(client: Any, window: Window, report: RunReport, work: Path) -> None:
    """A finished run's outcome: the publish summary's status and rows, or its first error."""
    explain(client, report, work)
    if report.status == SUCCEEDED and report.summary:
        window.status = str(report.summary.get("status", report.status))
        rows = report.summary.get("rows_published")
        window.rows = int(rows) if rows is not None else None
    elif report.status == SUCCEEDED:
        window.status = "completed, no summary"
        window.error = "the publish step's summary could not be read"
    else:
        window.status = report.status
        if report.error_text:
            first = report.error_text.strip().splitlines()[-1]
            window.error = f"{report.error_step}: {first}"


def table(windows: list[Window]) -> str:
    """One line per window: end, status, rows published, run, first error."""
    lines = [f"{'WINDOW END (UTC)':<21} {'STATUS':<18} {'ROWS':>8}  RUN / FIRST ERROR"]
    for window in windows:
        rows = "-" if window.rows is None else str(window.rows)
        detail = window.job_name or ""
        if window.error:
            detail = f"{detail}: {window.error}" if detail else window.error
        lines.append(f"{window.end:<21} {window.status:<18} {rows:>8}  {detail}".rstrip())
    closed = sum(1 for w in windows if w.closed)
    lines.append(f"{closed} of {len(windows)} windows closed")
    return "\n".join(lines)


def published_in(container: Any, prefix: str, folders: set[str]) -> set[str]:
    """Which of the window ``folders`` under ``prefix`` of the predictions container have a run
    summary saying the window was closed (succeeded or empty); a failed run's summary does not
    count. One listing, then only the summaries of those windows are read."""
    from batchscore.cloud.blob_sync import safe_url, storage_call
    from batchscore.cloud.run_summaries import READER
    from batchscore.run_history import History
    from scoring.steps.publish import SUMMARY_FILE

    root = prefix.strip("/")
    where = safe_url(container.url) + (f"/{root}" if root else "")
    start = f"{root}/window=" if root else "window="
    names = storage_call(
        lambda: {b.name for b in container.list_blobs(name_starts_with=start)},
        "list",
        where,
        role=READER,
    )
    history = History()
    for folder in sorted(folders):
        name = f"{root}/{folder}/{SUMMARY_FILE}" if root else f"{folder}/{SUMMARY_FILE}"
        if name in names:
            data = storage_call(
                lambda name=name: container.download_blob(name).readall(),
                f"read {name} from",
                where,
                role=READER,
            )
            history.add(f"{where}/{folder}", data)
    return {run.summary.window for run in history.runs if run.summary.status in CLOSED}


def datastore_account(client: Any, datastore: str) -> tuple[str, str]:
    """(account URL, container) of a workspace's blob datastore."""
    from batchscore.aml.run import azure_call

    store = azure_call(
        lambda: client.datastores.get(datastore),
        f"read datastore {datastore}",
        missing=f"datastore {datastore!r} not found in the workspace (--predictions-datastore)",
    )
    account, container = (
        getattr(store, "account_name", None),
        getattr(store, "container_name", None),
    )
    if not account or not container:
        raise UsageError(f"datastore {datastore!r} is not a blob container datastore")
    protocol = getattr(store, "protocol", None) or "https"
    endpoint = getattr(store, "endpoint", None) or "core.windows.net"
    return f"{protocol}://{account}.blob.{endpoint}", container
