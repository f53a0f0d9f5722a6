"""Day two of the Stream Analytics job, rehearsed offline.

Plan a stack, change `streamWindowMinutes` and `streamingUnits` (or an event policy), plan
again, and check what `pulumi up` would do with the difference:

* under mocks: the job's changed properties are all ones it ignores (`ignoreChanges`), so the
  engine never PUTs the job; the job definition resource (query, units, policies) and the job
  start (its restart hash) change; the job, its input and its output carry the stop hook; the
  start comes after all of them;
* against the recording fake of the service (which, like Azure, refuses to update a running
  job, pulumi-azure-native#785, and refuses the job's own PUT once it exists, "at least one
  input defined", pulumi-azure-native#688): the definition provider's update, then the start
  provider's update give stop -> patch -> start, the new query and units in place; an input's
  update goes stop (hook) -> update -> start; and the old way, a PUT of the job, is refused.

What mocks cannot show: the engine calling the hook (mocks see the binding, never run it) and
Azure's refusals themselves. The second half covers both with the fake, in the engine's order.
"""

from __future__ import annotations

import pulumi
import pytest

from components.offline import mocks
from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView
from components.providers import common
from components.providers import stream_definition as sd
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
DEFINITION = "pulumi-python:dynamic/batchscore:StreamJobDefinition"


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


def test_a_query_or_unit_change_patches_the_definition_and_never_puts_the_job(
    before: PlanView, after: PlanView
) -> None:
    job, start, definition = after.one(JOB), after.one(JOB_START), after.one(DEFINITION)
    assert changed_inputs(before, after) == {
        job.name: {"transformation"},
        definition.name: {"query", "streamingUnits"},
        start.name: {"configHash"},
    }
    assert set(job.ignore_changes) == set(sd.JOB_PATCHED_PROPERTIES)
    assert definition.get("streamingUnits") == 3
    assert "TumblingWindow(minute, 10)" in definition.get("query")
    assert before.one(DEFINITION).get("streamingUnits") == 1


def test_a_policy_change_patches_the_definition_too() -> None:
    old = PlanView(plan_in_subprocess(STACK))
    new = PlanView(plan_in_subprocess(STACK, overrides={"eventsOutOfOrderPolicy": "Drop"}))
    job, definition = new.one(JOB), new.one(DEFINITION)
    changes = changed_inputs(old, new)
    assert changes[job.name] == {"eventsOutOfOrderPolicy"} <= set(job.ignore_changes)
    assert changes[definition.name] == {"settings"}
    assert definition.get("settings.eventsOutOfOrderPolicy") == "Drop"


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
    # The job through the start's own input (its name), the rest explicitly.
    assert start.get("jobName") == job.id.rsplit("/", 1)[-1]
    names = {after.one(t).name for t in (SA_INPUT, SA_OUTPUT, DEFINITION)}
    assert names <= set(start.depends_on)
    assert {after.one(SA_INPUT).name, after.one(SA_OUTPUT).name} <= set(
        after.one(DEFINITION).depends_on
    ), "the definition is patched once the job has its input and output"


# --- against the recording fake, in the engine's order ----------------------------------------


@pytest.fixture
def service(monkeypatch, before) -> FakeStreamingJobs:
    deployed = before.one(DEFINITION)
    fake = FakeStreamingJobs(
        state="Running",
        last_output="2024-05-01T12:00:00Z",
        query=deployed.get("query"),
        units=deployed.get("streamingUnits"),
    )
    fake.settings = dict(deployed.get("settings"))
    monkeypatch.setattr(sj, "management_client", lambda _sub: _Client(fake))
    monkeypatch.setattr(sj, "sleep", lambda _: None)
    monkeypatch.setattr(sj, "RETRY", common.RetryPolicy(sleep=lambda _: None))
    return fake


class _Client:
    def __init__(self, jobs):
        self.streaming_jobs = jobs
        self.transformations = jobs.transformations


@pytest.fixture(scope="module")
def bound_hook() -> pulumi.ResourceHook:
    """The hook StreamProcessing itself binds (built in-process under the offline mocks)."""
    mocks.install("batchscore", "unit", {})
    try:
        stream = StreamProcessing("stream", stream_args(window_minutes=10))
        return stream.stop_hook
    finally:
        pulumi.runtime.set_all_config({})


def _engine_update(hook, service, before, after, with_hook=True):
    """What `pulumi up` does with the planned change, in the engine's order: each changed
    resource the engine updates (the job's ignored properties excepted: see
    ``_engine_updates``) gets its before_update hooks, then its update; the definition
    provider's update; then the start resource's update."""
    for resource in _engine_updates(before, after):
        if resource.type == DEFINITION:
            olds = before.one(DEFINITION).inputs
            sd.StreamJobDefinitionProvider().update("id", olds, resource.inputs)
            continue
        if with_hook and resource.hooks.get("beforeUpdate"):
            hook.callback(pulumi.ResourceHookArgs(urn="urn", id=resource.id, name="n", type="t"))
        service.update_definition(resource.id.rsplit("/", 1)[-1])
    olds = {**before.one(JOB_START).inputs, "jobState": "Running"}
    sj.StreamJobStartProvider().update("id", olds, after.one(JOB_START).inputs)


def _engine_updates(before: PlanView, after: PlanView) -> list:
    """The resources the engine updates: changed inputs other than the ones each ignores,
    the start excepted (it runs last)."""
    changed = changed_inputs(before, after)
    return [
        r
        for r in after
        if r.name in changed
        and r.type != JOB_START
        and not changed[r.name] <= set(r.ignore_changes)
    ]


def test_a_query_change_stops_patches_and_starts(bound_hook, service, before, after):
    _engine_update(bound_hook, service, before, after)
    kinds = [c[0] for c in service.actions()]
    assert kinds == ["stop", "patch-transformation", "start"], service.actions()
    assert service.actions()[-1][-1] == "LastOutputEventTime", "no window may be lost"
    assert service.state == "Running"
    assert service.transformation.streaming_units == 3
    assert "TumblingWindow(minute, 10)" in service.transformation.query
    job_name = after.one(JOB).id.rsplit("/", 1)[-1]
    assert service.actions()[0] == (
        "stop",
        before.one("azure-native:resources:ResourceGroup").get("resourceGroupName"),
        job_name,
    )


def test_a_policy_change_patches_the_job_settings_alone(bound_hook, service, before):
    new = PlanView(plan_in_subprocess(STACK, overrides={"outputErrorPolicy": "Stop"}))
    _engine_update(bound_hook, service, before, new)
    kinds = [c[0] for c in service.actions()]
    assert kinds == ["stop", "patch-job", "start"], service.actions()
    assert service.settings["outputErrorPolicy"] == "Stop"


def test_the_old_way_a_put_of_the_job_is_refused(service, after):
    """What the engine did before: update the job resource itself (pulumi-azure-native#688)."""
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError, match="at least one input defined"):
        service.update_definition(after.one(JOB).id.rsplit("/", 1)[-1])


def test_an_unchanged_definition_touches_nothing(service, before):
    sd.StreamJobDefinitionProvider().create(dict(before.one(DEFINITION).inputs))
    assert service.actions() == [] and service.state == "Running"


def test_an_input_update_stops_the_job_of_the_input(bound_hook, service, before, after):
    hook_args = pulumi.ResourceHookArgs(urn="urn", id=after.one(SA_INPUT).id, name="n", type="t")
    bound_hook.callback(hook_args)
    service.update_definition(after.one(SA_INPUT).id.rsplit("/", 1)[-1])
    olds = {**before.one(JOB_START).inputs, "jobState": "Running"}
    sj.StreamJobStartProvider().update("id", olds, after.one(JOB_START).inputs)
    assert [c[0] for c in service.actions()] == ["stop", "update", "start"]


def test_without_the_hook_azure_refuses_an_input_update(service, after):
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError, match="stop it before updating"):
        service.update_definition(after.one(SA_INPUT).id.rsplit("/", 1)[-1])
    assert [c[0] for c in service.actions()] == ["update"]


def test_a_failed_stop_fails_the_update_before_azure_is_touched(bound_hook, service, before, after):
    from azure.core.exceptions import HttpResponseError

    from tests.components.fake_stream_analytics import FakeResponse

    service.fail["stop"] = [HttpResponseError(response=FakeResponse(403))]
    with pytest.raises(AzureCallError, match="Stop/action"):
        _engine_update(bound_hook, service, before, after)
    assert [c[0] for c in service.actions()] == ["stop"]
    assert "TumblingWindow(minute, 5)" in service.transformation.query, "nothing was patched"


# --- SKU ---------------------------------------------------------------------------------------


def test_the_job_stays_on_standard_until_the_provider_offers_standard_v2(after: PlanView):
    """StandardV2 (SU V2) needs API 2021-10-01-preview; the provider's StreamingJob speaks
    2020-03-01 with `Standard` alone (components/stream_processing.py says why). Once the
    installed provider offers StandardV2 this fails: then move, with SU V2 values."""
    from azure.mgmt.streamanalytics.models import SkuName as MgmtSkuName
    from pulumi_azure_native.streamanalytics import SkuName

    assert after.one(JOB).get("sku.name") == "Standard"
    assert [s.value for s in SkuName] == ["Standard"]
    assert [s.value for s in MgmtSkuName] == ["Standard"]
