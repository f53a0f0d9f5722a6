"""Day two of the Stream Analytics job, rehearsed offline.

Plan a stack, change `streamWindowMinutes` and `streamingUnits`, plan again, and check what
`pulumi up` would do with the difference:

* under mocks: exactly the job (its query and streaming units) and the job start (its restart
  hash) change; the job, its input and its output carry the stop hook; the start comes after
  all three;
* against the recording fake of the service (which, like Azure, refuses to update a running
  job: pulumi-azure-native#785): the bound hook's own callback, the update, then the start
  provider's update give stop -> update -> start, and without the hook the update is refused.

What mocks cannot show: the engine calling the hook (mocks see the binding, never run it) and
Azure's refusal itself. The second half covers both with the fake, in the engine's order.
"""

from __future__ import annotations

import pulumi
import pytest

from components.offline import mocks
from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView
from components.providers import common
from components.providers import stream_job as sj
from components.providers.azure_errors import AzureCallError
from components.stream_processing import StreamProcessing
from tests.components.fake_stream_analytics import FakeStreamingJobs
from tests.components.stream_args import stream_args

STACK = "dev"
CHANGE = {"streamWindowMinutes": "10", "streamingUnits": "3"}
JOB = "azure-native:streamanalytics:StreamingJob"
SA_INPUT = "azure-native:streamanalytics:Input"
SA_OUTPUT = "azure-native:streamanalytics:Output"
JOB_START = "pulumi-python:dynamic/batchscore:StreamJobStart"


@pytest.fixture(scope="module")
def before() -> PlanView:
    return PlanView(plan_in_subprocess(STACK))


@pytest.fixture(scope="module")
def after() -> PlanView:
    return PlanView(plan_in_subprocess(STACK, overrides=CHANGE))


def changed_inputs(before: PlanView, after: PlanView) -> dict[str, set[str]]:
    """logical name -> input keys whose values differ between the two plans."""
    old = {r.name: r for r in before}
    new = {r.name: r for r in after}
    assert set(old) == set(new), "the change adds or removes resources"
    changes = {}
    for name, resource in new.items():
        keys = set(resource.inputs) | set(old[name].inputs)
        differ = {k for k in keys if resource.inputs.get(k) != old[name].inputs.get(k)}
        if differ:
            changes[name] = differ
    return changes


# --- under mocks ---------------------------------------------------------------------------


def test_only_the_job_and_its_start_change(before: PlanView, after: PlanView) -> None:
    job, start = after.one(JOB), after.one(JOB_START)
    assert changed_inputs(before, after) == {
        job.name: {"transformation"},
        start.name: {"configHash"},
    }
    assert job.get("transformation.streamingUnits") == 3
    assert "TumblingWindow(minute, 10)" in job.get("transformation.query")
    assert before.one(JOB).get("transformation.streamingUnits") == 1


def test_the_start_provider_turns_the_new_hash_into_an_in_place_update(before, after) -> None:
    olds = {**before.one(JOB_START).inputs, "jobState": "Running"}
    result = sj.StreamJobStartProvider().diff("id", olds, after.one(JOB_START).inputs)
    assert result.changes and not result.replaces


def test_job_input_and_output_carry_the_stop_hook(after: PlanView) -> None:
    bound = {
        r.name: r.hooks.get("beforeUpdate")
        for r in (after.one(t) for t in (JOB, SA_INPUT, SA_OUTPUT))
    }
    assert set(bound.values()) == {("stream-stop-job-before-update",)}, bound
    others = [
        r.name
        for r in after
        if "stream-stop-job-before-update" in r.hooks.get("beforeUpdate", ())
        and r.type not in (JOB, SA_INPUT, SA_OUTPUT)
    ]
    assert others == [], f"unexpected stop hooks on {others}"


def test_the_start_runs_after_the_job_its_input_and_its_output(after: PlanView) -> None:
    start, job = after.one(JOB_START), after.one(JOB)
    # The job through the start's own input (its name), the input and output explicitly.
    assert start.get("jobName") == job.id.rsplit("/", 1)[-1]
    assert {after.one(SA_INPUT).name, after.one(SA_OUTPUT).name} <= set(start.depends_on)


# --- against the recording fake, in the engine's order ----------------------------------------


@pytest.fixture
def service(monkeypatch) -> FakeStreamingJobs:
    fake = FakeStreamingJobs(state="Running", last_output="2024-05-01T12:00:00Z")
    monkeypatch.setattr(sj, "management_client", lambda _sub: _Client(fake))
    monkeypatch.setattr(sj, "sleep", lambda _: None)
    monkeypatch.setattr(sj, "RETRY", common.RetryPolicy(sleep=lambda _: None))
    return fake


class _Client:
    def __init__(self, jobs):
        self.streaming_jobs = jobs


@pytest.fixture(scope="module")
def bound_hook() -> pulumi.ResourceHook:
    """The hook StreamProcessing itself binds (built in-process under the offline mocks)."""
    mocks.install("batchscore", "unit", {})
    try:
        stream = StreamProcessing("stream", stream_args(window_minutes=10))
        return stream.stop_hook
    finally:
        pulumi.runtime.set_all_config({})


def _engine_update(hook, service, resource_ids, before, after, with_hook=True):
    """What `pulumi up` does with the planned change: each changed or hooked resource gets its
    before_update hooks, then its update; then the start resource's update."""
    for resource_id in resource_ids:
        if with_hook:
            hook.callback(pulumi.ResourceHookArgs(urn="urn", id=resource_id, name="n", type="t"))
        service.update_definition(resource_id.rsplit("/", 1)[-1])
    olds = {**before.one(JOB_START).inputs, "jobState": "Running"}
    sj.StreamJobStartProvider().update("id", olds, after.one(JOB_START).inputs)


def test_stop_update_start_in_that_order(bound_hook, service, before, after):
    job = after.one(JOB)
    _engine_update(bound_hook, service, [job.id], before, after)
    job_name = job.id.rsplit("/", 1)[-1]
    assert [c[0] for c in service.actions()] == ["stop", "update", "start"]
    assert service.actions()[-1][-1] == "LastOutputEventTime", "no window may be lost"
    assert service.state == "Running"
    assert service.actions()[0] == (
        "stop",
        before.one("azure-native:resources:ResourceGroup").get("resourceGroupName"),
        job_name,
    )


def test_an_input_update_stops_the_job_of_the_input(bound_hook, service, before, after):
    _engine_update(bound_hook, service, [after.one(SA_INPUT).id], before, after)
    assert [c[0] for c in service.actions()] == ["stop", "update", "start"]


def test_without_the_hook_azure_refuses_the_update(bound_hook, service, before, after):
    with pytest.raises(Exception, match="stop it before updating"):
        _engine_update(bound_hook, service, [after.one(JOB).id], before, after, with_hook=False)
    assert [c[0] for c in service.actions()] == ["update"]


def test_a_failed_stop_fails_the_update_before_azure_is_touched(bound_hook, service, before, after):
    from azure.core.exceptions import HttpResponseError

    from tests.components.fake_stream_analytics import FakeResponse

    service.fail["stop"] = [HttpResponseError(response=FakeResponse(403))]
    with pytest.raises(AzureCallError, match="Stop/action"):
        _engine_update(bound_hook, service, [after.one(JOB).id], before, after)
    assert [c[0] for c in service.actions()] == ["stop"]
