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

from components.aml.pipeline import PUBLISH_STEP
from scoring.errors import RunFailed, UsageError

TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding", "Paused"}
SUCCEEDED = "Completed"
TRIGGER_INPUT = "trigger_time"
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


def submit(client: Any, schedule_name: str, end: str, *, purpose: str = "manual") -> Any:
    """Submit the schedule's own job with ``trigger_time`` = ``end``; returns the created job.

    The job is the schedule's ``create_job`` as ``schedules.get`` returns it (a fresh entity on
    every call, so one schedule read serves one submission). ``trigger_time`` is set by
    attribute: azure-ai-ml's ``InputsAttrDict`` wraps a value in its ``PipelineInput`` only in
    ``__setattr__``; item assignment is plain ``dict.__setitem__`` and the submission then fails
    with "'str' object has no attribute '_to_job_input'"
    (azure/ai/ml/entities/_job/pipeline/_io/attr_dict.py).
    """
    from azure.ai.ml.entities import PipelineJob

    schedule = read_schedule(client, schedule_name)
    job = schedule.create_job
    if not isinstance(job, PipelineJob) or TRIGGER_INPUT not in (job.inputs or {}):
        raise UsageError(
            f"schedule {schedule_name!r} does not run a pipeline job with a "
            f"{TRIGGER_INPUT!r} input (is it the scoring schedule?)"
        )
    job.inputs.trigger_time = end  # attribute assignment: see the docstring
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    job.name = f"{schedule_name}-{purpose}-{stamp}-{secrets.token_hex(3)}"
    job.display_name = f"{schedule_name}: {purpose} run, window ending {end}"
    return azure_call(lambda: client.jobs.create_or_update(job), f"submit {job.name}")


def read_schedule(client: Any, schedule_name: str) -> Any:
    """The deployed schedule (``schedules.get``); a missing one is a usage error."""
    return azure_call(
        lambda: client.schedules.get(schedule_name),
        f"read schedule {schedule_name}",
        missing=f"schedule {schedule_name!r} not found in the workspace (deployed yet? the stack "
        "output scoringScheduleName names it)",
    )


def azure_call(call: Callable[[], Any], action: str, *, missing: str | None = None) -> Any:
    """``call()``, its failure as one line of the error hierarchy: no sign-in is "run
    `az login`" (exit 1, as the other commands), a missing resource with a ``missing`` message
    a usage error (exit 2), anything else the service's own reason (exit 1)."""
    from components.providers.azure_errors import explain

    try:
        return call()
    except Exception as exc:
        error = explain(exc, action=action, target="the workspace")
        if error.kind == "unauthenticated":
            raise RunFailed(
                f"{action}: cannot sign in to Azure ({type(exc).__name__}): run `az login` "
                "(or give this machine a managed or workload identity), then try again"
            ) from exc
        if error.kind == "not_found" and missing:
            raise UsageError(missing) from exc
        raise RunFailed(_one_line(error)) from exc


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
    while not poll(client, report, on_change):
        if time.monotonic() > deadline:
            raise RunFailed(
                f"{job_name} is still {report.status} after {timeout_seconds / 60:.0f} minutes; "
                f"follow it in the studio: {report.studio_url or job_name}"
            )
        sleep(poll_seconds)
    return report


def poll(client: Any, report: RunReport, on_change: Callable[[str], None] = print) -> bool:
    """Read the run and its steps once, report what changed; True once the run has ended."""
    name = report.job_name
    job = azure_call(lambda: client.jobs.get(name), f"read run {name}")
    report.studio_url = getattr(job, "studio_url", None) or report.studio_url
    status = status_text(job.status)
    if status != report.status:
        report.status = status
        on_change(f"{name}: {status}")
    children = azure_call(
        lambda: list(client.jobs.list(parent_job_name=name)), f"list the steps of {name}"
    )
    for child in children:
        step, step_status = _step_name(child), status_text(child.status)
        if report.steps.get(step) != step_status:
            report.steps[step] = step_status
            on_change(f"  {name} step {step}: {step_status}")
    return status in TERMINAL


def status_text(status: Any) -> str:
    """A job's status as its plain name: azure-ai-ml hands back a ``JobStatus`` enum member
    (a ``str`` whose ``str()`` is "JobStatus.FAILED") or a string."""
    return str(getattr(status, "value", status) or "NotStarted")


def explain(
    client: Any, report: RunReport, work: Path, summary_step: str = PUBLISH_STEP
) -> RunReport:
    """Fill in the outcome: the summary of ``summary_step`` (the scoring pipeline's publish,
    the training pipeline's promote) on success, the first real error otherwise."""
    listed = azure_call(
        lambda: list(client.jobs.list(parent_job_name=report.job_name)),
        f"list the steps of {report.job_name}",
    )
    children = {_step_name(c): c for c in listed}
    if report.status == SUCCEEDED:
        publish = children.get(summary_step)
        if publish is not None:
            target = work / "summary"
            azure_call(
                lambda: client.jobs.download(
                    publish.name, download_path=target, output_name=SUMMARY_OUTPUT
                ),
                f"download the summary of {report.job_name}",
            )
            found = sorted(target.rglob("summary.json"))
            if found:
                report.summary = json.loads(found[0].read_text(encoding="utf-8"))
        return report
    failed = [name for name, child in children.items() if status_text(child.status) != SUCCEEDED]
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
    """A step's name in the pipeline: the child job's display name, which the pipeline sets to
    the step's name on every node (:func:`components.aml.pipeline.scoring_pipeline_job`)."""
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
    report = RunReport(job.name, status=status_text(getattr(job, "status", None)))
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
