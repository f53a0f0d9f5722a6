"""The StreamJobStart component's dynamic provider: start the Stream Analytics job once its table
exists; stop it before destroy.

Deploying a Stream Analytics job does not start it, and it must not start before
``dbo.SensorReadings`` and its database user exist (the StreamJobStart component depends on the
SqlBootstrap). The dynamic provider, using ``azure-mgmt-streamanalytics``:

* create: starts the job (``output_start_mode`` from the args, ``JobStartTime`` by default);
  a job that is already running is left alone, so the step is idempotent.
* update: restarts the job (stop, then start from ``LastOutputEventTime`` so no window is
  lost or written twice) when ``config_hash`` changed, i.e. anything the job, its input or
  its output is declared with changed; otherwise it only makes sure the job runs (again from
  ``LastOutputEventTime``: a job stopped outside Pulumi resumes where its output ended).
* read (``pulumi refresh``): records the job's real state, so a job stopped or failed
  outside Pulumi shows: ``diff`` reports a change for any recorded state that is not
  running, the drift check's ``preview --refresh --expect-no-changes`` fails on it, and the
  next ``pulumi up`` starts the job. A deleted job drops the resource from the state.
* delete: stops the job (a job already gone or stopped is fine).

Azure refuses to update a running job, input or output (pulumi-azure-native#785), so those
three resources carry :func:`stop_before_update_hook` (a Pulumi ``before_update`` resource
hook, run by the engine in the program's process, never in a preview); the same change alters
``config_hash``, and this resource, which runs after them, starts the job again.

Credentials: ``DefaultAzureCredential`` built inside each method, never an input or state.
The deploying identity needs the start/stop actions on the job (Contributor on it, or a
role with ``Microsoft.StreamAnalytics/streamingjobs/Start/action`` and ``Stop/action``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN  # a value known only after the deployment

from components.providers.azure_errors import AzureCallError
from components.providers.common import (
    DEFAULT_RETRY,
    RetryPolicy,
    call_azure,
    default_credential,
    diff_result,
    pickled_as,
    run_operation,
)

log = logging.getLogger(__name__)

START_MODES = ("JobStartTime", "LastOutputEventTime")
RUNNING_STATES = frozenset({"Running", "Starting", "Degraded", "Scaling", "Restarting"})
STOPPED_STATES = frozenset({"Created", "Stopped", "Failed"})
INPUT_KEYS = ("subscriptionId", "resourceGroupName", "jobName", "startMode", "configHash")
IDENTITY_KEYS = ("subscriptionId", "resourceGroupName", "jobName")
REQUIRED_ROLE = (
    "Contributor on the Stream Analytics job (or a role allowing "
    "Microsoft.StreamAnalytics/streamingjobs/Start/action and Stop/action)"
)
LRO_TIMEOUT_SECONDS = 900.0  # a start can take several minutes
STOPPING_POLL_SECONDS = 10.0
STOPPING_MAX_POLLS = 60
# Throttling retries of every call (a module global so tests can make the waits instant).
RETRY: RetryPolicy = DEFAULT_RETRY
_JOB_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.StreamAnalytics/streamingjobs/(?P<job>[^/]+)(?:/.*)?$",
    re.IGNORECASE,
)


def sleep(seconds: float) -> None:
    """Module-level so tests can make waiting instant."""
    time.sleep(seconds)


def management_client(subscription_id: str) -> Any:
    """The real client (tests replace this function with a recording fake)."""
    from azure.mgmt.streamanalytics import StreamAnalyticsManagementClient

    return StreamAnalyticsManagementClient(default_credential(), subscription_id)


def _start_parameters(mode: str) -> Any:
    from azure.mgmt.streamanalytics.models import StartStreamingJobParameters

    return StartStreamingJobParameters(output_start_mode=mode)


# ----------------------------------------------------------------- job operations


@dataclass(frozen=True)
class JobRef:
    subscription_id: str
    resource_group: str
    job_name: str

    @property
    def target(self) -> str:
        return f"Stream Analytics job {self.job_name} in resource group {self.resource_group}"

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> JobRef:
        return cls(props["subscriptionId"], props["resourceGroupName"], props["jobName"])

    @classmethod
    def from_resource_id(cls, resource_id: str) -> JobRef:
        """The job of an ARM id of the job or of one of its children (input, output...)."""
        match = _JOB_ID.match(resource_id or "")
        if not match:
            raise ValueError(f"{resource_id!r} is not a Stream Analytics job resource id")
        return cls(match["sub"], match["rg"], match["job"])


def _get_job(client: Any, job: JobRef) -> Any:
    return call_azure(
        client.streaming_jobs.get,
        job.resource_group,
        job.job_name,
        action="read the state of",
        target=job.target,
        required_role=REQUIRED_ROLE,
        retry=RETRY,
    )


def job_state(client: Any, job: JobRef) -> str:
    return str(_get_job(client, job).job_state)


def ensure_running(client: Any, job: JobRef, mode: str) -> str:
    """Start the job unless it already runs; returns the state it ends in."""
    current = _get_job(client, job)
    state = str(current.job_state)
    if state in RUNNING_STATES:
        log.info("%s is already %s; not starting it again", job.target, state)
        return state
    if state == "Stopping":
        state = _wait_while_stopping(client, job)
    if state not in STOPPED_STATES:
        raise AzureCallError(
            f"start {job.target} failed: it is {state}, which cannot be started; "
            "check it in the Azure portal and run the deployment again.",
            status=None,
            kind="conflict",
            action="start",
            target=job.target,
        )
    if mode == "LastOutputEventTime" and getattr(current, "last_output_event_time", None) is None:
        log.info("%s has never written output; starting from JobStartTime", job.target)
        mode = "JobStartTime"
    log.info("starting %s (output start mode %s)", job.target, mode)
    run_operation(
        client.streaming_jobs.begin_start,
        job.resource_group,
        job.job_name,
        _start_parameters(mode),
        action="start",
        target=job.target,
        required_role=REQUIRED_ROLE,
        retry=RETRY,
        timeout_seconds=LRO_TIMEOUT_SECONDS,
    )
    return "Running"


def ensure_stopped(client: Any, job: JobRef, *, missing_ok: bool = False) -> str:
    """Stop the job unless it is stopped already; returns the state it ends in."""
    try:
        state = job_state(client, job)
    except AzureCallError as exc:
        if missing_ok and exc.kind == "not_found":
            log.info("%s no longer exists; nothing to stop", job.target)
            return "Deleted"
        raise
    if state in STOPPED_STATES:
        return state
    if state == "Stopping":
        return _wait_while_stopping(client, job)
    log.info("stopping %s (was %s)", job.target, state)
    run_operation(
        client.streaming_jobs.begin_stop,
        job.resource_group,
        job.job_name,
        action="stop",
        target=job.target,
        required_role=REQUIRED_ROLE,
        retry=RETRY,
        timeout_seconds=LRO_TIMEOUT_SECONDS,
    )
    return "Stopped"


def _wait_while_stopping(client: Any, job: JobRef) -> str:
    for _ in range(STOPPING_MAX_POLLS):
        state = job_state(client, job)
        if state != "Stopping":
            return state
        sleep(STOPPING_POLL_SECONDS)
    raise AzureCallError(
        f"{job.target} stayed in Stopping for {STOPPING_MAX_POLLS * STOPPING_POLL_SECONDS:g} s; "
        "check it in the Azure portal and run the deployment again.",
        status=None,
        kind="timeout",
        action="wait for stop",
        target=job.target,
    )


# ----------------------------------------------------------------------- the provider


@pickled_as("components.stream_job")  # re-exported there
class StreamJobStartProvider(dynamic.ResourceProvider):
    """Start on create, restart on a changed config hash, stop on delete."""

    serialize_as_secret_always = False  # it captures no secret: credentials live in methods

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = []
        for key in IDENTITY_KEYS:
            value = news.get(key)
            if value != UNKNOWN and (not isinstance(value, str) or not value.strip()):
                failures.append(dynamic.CheckFailure(key, f"{key} must be a non-empty string"))
        mode = news.get("startMode")
        if mode not in START_MODES:
            failures.append(
                dynamic.CheckFailure(
                    "startMode", f"startMode {mode!r} must be one of {', '.join(START_MODES)}"
                )
            )
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        # Another job (or the same name elsewhere) is another resource: start it, stop the old.
        result = diff_result(olds, news, keys=INPUT_KEYS, replace_keys=IDENTITY_KEYS)
        recorded = olds.get("jobState")
        if not result.changes and recorded is not None and recorded not in RUNNING_STATES:
            # refresh found the job stopped or failed: an update starts it again
            return dynamic.DiffResult(changes=True, replaces=[])
        return result

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        job = JobRef.from_props(props)
        state = ensure_running(management_client(job.subscription_id), job, props["startMode"])
        return dynamic.CreateResult(
            f"/subscriptions/{job.subscription_id}/resourceGroups/{job.resource_group}/providers/"
            f"Microsoft.StreamAnalytics/streamingjobs/{job.job_name}/start",
            _outputs(props, state),
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        job = JobRef.from_props(news)
        client = management_client(job.subscription_id)
        if olds.get("configHash") != news.get("configHash"):
            log.info("%s: its job, input or output definition changed; restarting", job.target)
            ensure_stopped(client, job)
        # A job that ran before resumes where its output ended (ensure_running falls back to
        # JobStartTime for a job that never wrote output).
        state = ensure_running(client, job, "LastOutputEventTime")
        return dynamic.UpdateResult(_outputs(news, state))

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        job = JobRef.from_props(props)
        try:
            state = job_state(management_client(job.subscription_id), job)
        except AzureCallError as exc:
            if exc.kind == "not_found":
                return dynamic.ReadResult("", {})  # the job is gone: so is its start
            raise
        if state not in RUNNING_STATES:
            log.warning("%s is %s, not running: the next `pulumi up` starts it", job.target, state)
        inputs = {k: props[k] for k in INPUT_KEYS if k in props}
        return dynamic.ReadResult(id_, _outputs(props, state), inputs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        job = JobRef.from_props(props)
        ensure_stopped(management_client(job.subscription_id), job, missing_ok=True)


def _outputs(props: Mapping[str, Any], state: str) -> dict[str, Any]:
    outs = {k: props.get(k) for k in INPUT_KEYS}
    outs["jobState"] = state
    return outs


# ---------------------------------------------------------------- the update hook


def _stop_for_update(args: pulumi.ResourceHookArgs) -> None:
    """Stop the job that ``args.id`` (the job or one of its children) belongs to."""
    job = JobRef.from_resource_id(args.id)  # a ValueError names the id it cannot read
    ensure_stopped(management_client(job.subscription_id), job, missing_ok=True)


def stop_before_update_hook(name: str = "stop-stream-job-before-update") -> pulumi.ResourceHook:
    """A ``before_update`` hook for the job, its input and its output: Azure refuses to change
    them while the job runs. Bind it with
    ``ResourceOptions(hooks=ResourceHookBinding(before_update=[hook]))``; StreamJobStart starts
    the job again once the updated resources are in place (their change changes its
    ``config_hash``)."""
    return pulumi.ResourceHook(name, _stop_for_update)


# ------------------------------------------------------------------------ the dynamic resource


class StreamJobStartResource(dynamic.Resource, module="batchscore", name="StreamJobStart"):
    """The job's start as a dynamic resource; declared only by the StreamJobStart component."""

    jobState: pulumi.Output[str]  # noqa: N815 (dynamic outputs keep their state key)

    def __init__(
        self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(StreamJobStartProvider(), name, {**props, "jobState": None}, opts)
