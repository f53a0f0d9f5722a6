"""One run of the scoring pipeline now, on the real workspace: submit, watch, explain.

``batchscore pipeline run --stack dev [--end ISO] [--wait]`` is the first contact with a
deployed stack. It submits the very job the schedule submits (the schedule's own
``create_job``, read back from the workspace: the registered component versions, every
setting), with ``trigger_time`` set to the window end asked for (default ``now``), then
streams its status. When a step fails it downloads that step's logs and prints the first real
user error (the parallel job's error logs, not the driver's generic "SystemExit: 42"), with
the step and the mini-batch; when the run succeeds it prints where the predictions landed and
how many rows, from the publish step's summary output.

Credentials: ``DefaultAzureCredential``, created when the client is built (never from
arguments); the caller needs AzureML Data Scientist on the workspace. Azure ML's own
messages are kept, one line each.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scoring.errors import RunFailed, UsageError

TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding", "Paused"}
SUCCEEDED = "Completed"
PUBLISH_STEP = "publish"
SUMMARY_OUTPUT = "summary"
_WORKSPACE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)$",
    re.IGNORECASE,
)
#: where a step's error is written, most telling first (paths inside its downloaded logs):
#: the parallel job's per-process user errors, its job-level error, then the step's std logs
ERROR_LOGS = ("logs/user/error/**/*", "logs/job_error*.txt", "user_logs/std_log*.txt", "**/*.txt")
_GENERIC = re.compile(r"SystemExit: ?42|exit code:? ?42", re.IGNORECASE)


@dataclass(frozen=True)
class Workspace:
    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def from_id(cls, workspace_id: str) -> Workspace:
        match = _WORKSPACE_ID.match(workspace_id.strip())
        if not match:
            raise UsageError(
                f"workspace id {workspace_id!r} is not /subscriptions/<id>/resourceGroups/<rg>/"
                "providers/Microsoft.MachineLearningServices/workspaces/<name>"
            )
        return cls(match["sub"], match["rg"], match["ws"])


def default_client(workspace: Workspace) -> Any:
    """An ``MLClient`` on the workspace as whoever runs the command (DefaultAzureCredential)."""
    from azure.ai.ml import MLClient

    from components.providers.common import default_credential

    return MLClient(
        credential=default_credential(),
        subscription_id=workspace.subscription_id,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
    )


@dataclass
class RunReport:
    """What happened to one submitted run, for the command to print."""

    job_name: str
    status: str = "NotStarted"
    studio_url: str | None = None
    steps: dict[str, str] = field(default_factory=dict)
    error_step: str | None = None
    error_file: str | None = None
    error_text: str | None = None
    summary: dict[str, Any] | None = None


def submit(client: Any, schedule_name: str, end: str) -> Any:
    """Submit the schedule's own job with ``trigger_time`` = ``end``; returns the created job."""
    try:
        schedule = client.schedules.get(schedule_name)
    except Exception as exc:
        raise UsageError(f"schedule {schedule_name!r}: {_one_line(exc)}") from exc
    job = schedule.create_job
    if isinstance(job, str) or not hasattr(job, "inputs"):
        raise UsageError(f"schedule {schedule_name!r} does not define a pipeline job here")
    job.inputs["trigger_time"] = end
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    job.name = f"{schedule_name}-manual-{stamp}-{secrets.token_hex(3)}"
    job.display_name = f"{schedule_name}: manual run, window ending {end}"
    try:
        return client.jobs.create_or_update(job)
    except Exception as exc:
        raise RunFailed(f"submitting {job.name} failed: {_one_line(exc)}") from exc


def watch(
    client: Any,
    job_name: str,
    *,
    poll_seconds: float = 15.0,
    timeout_seconds: float = 4 * 3600,
    on_change: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    summary_step: str = PUBLISH_STEP,
) -> RunReport:
    """Poll the run and its steps until it ends (or the timeout), reporting each change."""
    report = RunReport(job_name)
    deadline = time.monotonic() + timeout_seconds
    while True:
        job = client.jobs.get(job_name)
        report.studio_url = getattr(job, "studio_url", None) or report.studio_url
        if job.status != report.status:
            report.status = job.status
            on_change(f"{job_name}: {job.status}")
        for child in client.jobs.list(parent_job_name=job_name):
            step = _step_name(child)
            if report.steps.get(step) != child.status:
                report.steps[step] = child.status
                on_change(f"  step {step}: {child.status}")
        if job.status in TERMINAL:
            return report
        if time.monotonic() > deadline:
            raise RunFailed(
                f"{job_name} is still {job.status} after {timeout_seconds / 60:.0f} minutes; "
                f"follow it in the studio: {report.studio_url or job_name}"
            )
        sleep(poll_seconds)


def explain(
    client: Any, report: RunReport, work: Path, summary_step: str = PUBLISH_STEP
) -> RunReport:
    """Fill in the outcome: the summary of ``summary_step`` (the scoring pipeline's publish,
    the training pipeline's promote) on success, the first real error otherwise."""
    children = {_step_name(c): c for c in client.jobs.list(parent_job_name=report.job_name)}
    if report.status == SUCCEEDED:
        publish = children.get(summary_step)
        if publish is not None:
            target = work / "summary"
            client.jobs.download(publish.name, download_path=target, output_name=SUMMARY_OUTPUT)
            found = sorted(target.rglob("summary.json"))
            if found:
                report.summary = json.loads(found[0].read_text(encoding="utf-8"))
        return report
    failed = [name for name, child in children.items() if child.status != SUCCEEDED]
    for step in failed or list(children):
        folder = work / "logs" / step
        try:
            client.jobs.download(children[step].name, download_path=folder)
        except Exception as exc:  # no logs (e.g. never started): say so, try the next step
            report.error_step, report.error_text = step, f"(logs unavailable: {_one_line(exc)})"
            continue
        found = first_user_error(folder)
        if found is not None:
            report.error_step = step
            report.error_file, report.error_text = found
            return report
    return report


def first_user_error(folder: Path) -> tuple[str, str] | None:
    """The first real error in a step's downloaded logs: a traceback (its last lines) or an
    error line, skipping the driver's generic exit messages; (file, text) or None."""
    seen: set[Path] = set()
    for pattern in ERROR_LOGS:
        for path in sorted(folder.rglob(pattern)):
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            text = _error_in(path.read_text(encoding="utf-8", errors="replace"))
            if text:
                return path.relative_to(folder).as_posix(), text
    return None


def _error_in(text: str) -> str | None:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            end = index + 1
            while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end]):
                end += 1
            if end < len(lines) and not _GENERIC.search(lines[end]):
                context = [lines[i] for i in range(max(0, index - 2), index) if lines[i].strip()]
                return "\n".join([*context, lines[end]]).strip()
    for line in lines:
        if re.search(r"\b(ERROR|Error|Exception)\b", line) and not _GENERIC.search(line):
            return line.strip()
    return None


def _step_name(child: Any) -> str:
    """A step's name in the pipeline (the child job's display name, else its name)."""
    return str(getattr(child, "display_name", None) or child.name)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "message", None) or exc).split())[:400]


def run_now(
    client: Any,
    schedule_name: str,
    end: str,
    *,
    wait: bool,
    poll_seconds: float = 15.0,
    timeout_seconds: float = 4 * 3600,
    on_change: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    summary_step: str = PUBLISH_STEP,
) -> RunReport:
    """Submit, and with ``wait`` watch and explain (logs go to a temporary folder)."""
    job = submit(client, schedule_name, end)
    report = RunReport(job.name, status=getattr(job, "status", "NotStarted"))
    report.studio_url = getattr(job, "studio_url", None)
    on_change(f"submitted {job.name} (window ending {end})")
    if not wait:
        return report
    report = watch(
        client,
        job.name,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_change=on_change,
        sleep=sleep,
    )
    with tempfile.TemporaryDirectory(prefix="batchscore-run-") as work:
        return explain(client, report, Path(work), summary_step)
