"""StreamJobStart against a recording fake Stream Analytics client, and the component."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pulumi
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from components import stream_job as sj_component
from components.providers import common
from components.providers import stream_job as sj
from components.providers.azure_errors import AzureCallError
from tests.components.fake_stream_analytics import FakeResponse, FakeStreamingJobs
from tests.components.recording_mocks import RecordingMocks

SUB = "11111111-1111-4111-8111-111111111111"
RG = "rg-batchscore-dev"
JOB = "asa-batchscore-dev"


@pytest.fixture
def jobs(monkeypatch):
    fake = FakeStreamingJobs()
    subscriptions: list[str] = []

    def client(subscription_id):
        subscriptions.append(subscription_id)
        return SimpleNamespace(streaming_jobs=fake)

    monkeypatch.setattr(sj, "management_client", client)
    monkeypatch.setattr(sj, "sleep", lambda _: None)
    fake.waits = []
    monkeypatch.setattr(sj, "RETRY", common.RetryPolicy(sleep=fake.waits.append))
    fake.subscriptions = subscriptions
    return fake


def _props(**changes):
    props = {
        "subscriptionId": SUB,
        "resourceGroupName": RG,
        "jobName": JOB,
        "startMode": "JobStartTime",
        "configHash": "hash-1",
    }
    props.update(changes)
    return props


def test_create_starts_a_stopped_job_with_the_configured_mode(jobs):
    result = sj.StreamJobStartProvider().create(_props())
    assert jobs.actions() == [("start", RG, JOB, "JobStartTime")]
    assert jobs.subscriptions == [SUB]
    assert result.outs["jobState"] == "Running"
    assert result.id.endswith(f"/streamingjobs/{JOB}/start")


def test_start_is_idempotent_when_already_running(jobs):
    jobs.state = "Running"
    sj.StreamJobStartProvider().create(_props())
    assert jobs.actions() == []


def test_update_without_config_change_only_ensures_running(jobs):
    jobs.state = "Running"
    provider = sj.StreamJobStartProvider()
    provider.update("id", _props(), _props(startMode="LastOutputEventTime"))
    assert jobs.actions() == []
    jobs.state = "Stopped"  # someone stopped it by hand: the next update starts it again
    provider.update("id", _props(), _props())
    assert jobs.actions() == [("start", RG, JOB, "JobStartTime")]


def test_changed_config_hash_restarts_from_the_last_output(jobs):
    jobs.state = "Running"
    jobs.last_output = "2024-05-01T12:00:00Z"
    provider = sj.StreamJobStartProvider()
    assert provider.diff("id", _props(), _props(configHash="hash-2")).changes

    provider.update("id", _props(), _props(configHash="hash-2"))

    assert jobs.actions() == [("stop", RG, JOB), ("start", RG, JOB, "LastOutputEventTime")]


def test_restart_of_a_job_that_never_wrote_output_starts_now(jobs):
    jobs.state = "Running"
    sj.StreamJobStartProvider().update("id", _props(), _props(configHash="hash-2"))
    assert jobs.actions() == [("stop", RG, JOB), ("start", RG, JOB, "JobStartTime")]


def test_restart_after_the_hook_already_stopped_the_job_does_not_stop_twice(jobs):
    jobs.state = "Stopped"
    sj.StreamJobStartProvider().update("id", _props(), _props(configHash="hash-2"))
    assert jobs.actions() == [("start", RG, JOB, "JobStartTime")]


def test_refresh_records_a_job_stopped_outside_pulumi_and_the_next_up_starts_it(jobs):
    provider = sj.StreamJobStartProvider()
    jobs.state = "Running"
    jobs.last_output = "2024-05-01T12:00:00Z"
    olds = provider.create(_props()).outs
    jobs.state = "Stopped"  # stopped in the portal
    refreshed = provider.read("id", olds)
    assert refreshed.outs["jobState"] == "Stopped"
    assert refreshed.inputs == {k: olds[k] for k in sj.INPUT_KEYS}
    assert provider.diff("id", refreshed.outs, _props()).changes, "drift went unnoticed"
    provider.update("id", refreshed.outs, _props())
    assert jobs.actions()[-1] == ("start", RG, JOB, "LastOutputEventTime")


def test_refresh_of_a_failed_job_reports_it_and_a_running_one_shows_no_change(jobs):
    provider = sj.StreamJobStartProvider()
    jobs.state = "Failed"
    failed = provider.read("id", _props(jobState="Running")).outs
    assert failed["jobState"] == "Failed"
    assert provider.diff("id", failed, _props()).changes
    jobs.state = "Running"
    running = provider.read("id", _props(jobState="Running")).outs
    assert not provider.diff("id", running, _props()).changes


def test_refresh_of_a_deleted_job_drops_the_start(jobs):
    jobs.fail["get"] = [ResourceNotFoundError("job not found")]
    assert sj.StreamJobStartProvider().read("id", _props()).id == ""


def test_delete_stops_a_running_job_and_tolerates_a_gone_one(jobs):
    jobs.state = "Running"
    provider = sj.StreamJobStartProvider()
    provider.delete("id", _props())
    assert jobs.actions() == [("stop", RG, JOB)]

    jobs.fail["get"] = [ResourceNotFoundError("job not found")]
    provider.delete("id", _props())  # no exception: nothing left to stop
    assert jobs.actions() == [("stop", RG, JOB)]


def test_delete_of_a_stopped_job_does_nothing(jobs):
    jobs.state = "Stopped"
    sj.StreamJobStartProvider().delete("id", _props())
    assert jobs.actions() == []


def test_start_waits_while_the_job_is_stopping(jobs):
    jobs.state = "Stopping"
    jobs.stopping_polls = 2
    sj.StreamJobStartProvider().create(_props())
    assert jobs.actions() == [("start", RG, JOB, "JobStartTime")]


def test_throttled_start_is_retried(jobs):
    jobs.fail["start"] = [HttpResponseError(response=FakeResponse(429, {"Retry-After": "1"}))]
    sj.StreamJobStartProvider().create(_props())
    assert [c[0] for c in jobs.actions()] == ["start", "start"]
    assert jobs.waits == [1.0], "Retry-After was not honoured"
    assert jobs.state == "Running"


def test_forbidden_names_the_missing_role(jobs):
    jobs.fail["start"] = [HttpResponseError(response=FakeResponse(403))]
    with pytest.raises(AzureCallError) as info:
        sj.StreamJobStartProvider().create(_props())
    message = str(info.value)
    assert info.value.kind == "forbidden"
    assert f"start on Stream Analytics job {JOB} in resource group {RG} failed" in message
    assert "streamingjobs/Start/action" in message


def test_missing_job_is_reported_on_create(jobs):
    jobs.fail["get"] = [ResourceNotFoundError("not found")]
    with pytest.raises(AzureCallError, match="was not found"):
        sj.StreamJobStartProvider().create(_props())


def test_deleting_job_cannot_be_started(jobs):
    jobs.state = "Deleting"
    with pytest.raises(AzureCallError, match="it is Deleting"):
        sj.StreamJobStartProvider().create(_props())


def test_moving_to_another_job_replaces_the_resource(jobs):
    result = sj.StreamJobStartProvider().diff("id", _props(), _props(jobName="other"))
    assert result.changes and result.replaces == ["jobName"]
    assert not sj.StreamJobStartProvider().diff("id", _props(), _props()).changes


def test_check_rejects_bad_values_and_waits_for_unknowns():
    provider = sj.StreamJobStartProvider()
    failures = provider.check({}, _props(jobName="", startMode="CustomTime")).failures
    assert {f.property for f in failures} == {"jobName", "startMode"}
    assert provider.check({}, _props(jobName=sj.UNKNOWN)).failures == []


def test_hook_stops_the_job_of_a_child_resource(jobs, monkeypatch):
    jobs.state = "Running"
    input_id = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
        f"Microsoft.StreamAnalytics/streamingjobs/{JOB}/inputs/sensor-readings"
    )
    args = pulumi.ResourceHookArgs(urn="urn", id=input_id, name="input", type="t")
    made = []
    # Building a real ResourceHook registers it with the engine; record the call instead.
    monkeypatch.setattr(pulumi, "ResourceHook", lambda name, fn: made.append((name, fn)))
    sj.stop_before_update_hook()
    ((name, callback),) = made
    assert name == "stop-stream-job-before-update"
    callback(args)
    assert jobs.actions() == [("stop", RG, JOB)]
    assert jobs.subscriptions == [SUB]
    with pytest.raises(ValueError, match="not a Stream Analytics job resource id"):
        sj.JobRef.from_resource_id("/subscriptions/x/resourceGroups/y")


def test_real_client_is_built_from_the_default_credential(monkeypatch):
    made = []

    class FakeClient:
        def __init__(self, credential, subscription_id):
            made.append((credential, subscription_id))

    monkeypatch.setattr(sj, "default_credential", lambda: "credential")
    monkeypatch.setitem(
        sys.modules,
        "azure.mgmt.streamanalytics",
        SimpleNamespace(StreamAnalyticsManagementClient=FakeClient),
    )
    sj.management_client(SUB)
    assert made == [("credential", SUB)]


def test_start_parameters_use_the_sdk_model():
    from azure.mgmt.streamanalytics.models import StartStreamingJobParameters

    params = sj._start_parameters("LastOutputEventTime")
    assert isinstance(params, StartStreamingJobParameters)
    assert params.output_start_mode == "LastOutputEventTime"


# --- the component under Pulumi mocks -------------------------------------------------------


class Bootstrap(pulumi.ComponentResource):
    def __init__(self, name):
        super().__init__("batchscore:index:SqlBootstrap", name, None)
        self.register_outputs({})


@pulumi.runtime.test
def test_component_starts_after_the_bootstrap(monkeypatch):
    seen_opts = []
    real = sj_component.StreamJobStartResource

    def recording(name, props, opts=None):
        seen_opts.append(opts)
        return real(name, props, opts)

    monkeypatch.setattr(sj_component, "StreamJobStartResource", recording)
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="batchscore", stack="test", preview=False)
    bootstrap = Bootstrap("sql")
    component = sj_component.StreamJobStart(
        "asa",
        sj_component.StreamJobStartArgs(
            subscription_id=SUB,
            resource_group_name=RG,
            job_name=JOB,
            config_hash="hash-1",
            start_after=[bootstrap],
        ),
    )
    (opts,) = seen_opts
    assert opts.parent is component
    assert opts.depends_on == [bootstrap], "the start does not wait for the SQL bootstrap"

    def check(urns):
        component_urn, child_urn = urns
        assert component_urn.endswith("batchscore:index:StreamJobStart::asa")
        assert child_urn.endswith(
            "batchscore:index:StreamJobStart$pulumi-python:dynamic/batchscore:StreamJobStart"
            "::asa-start"
        ), child_urn
        (child,) = [r for r in mocks.resources if r.name == "asa-start"]
        assert {k: child.inputs[k] for k in sj.INPUT_KEYS} == _props()

    return pulumi.Output.all(component.urn, component.start.urn).apply(check)


def test_component_refuses_an_unknown_start_mode():
    with pytest.raises(ValueError, match="start_mode 'Now' must be one of"):
        sj_component.StreamJobStart(
            "asa",
            sj_component.StreamJobStartArgs(
                subscription_id=SUB,
                resource_group_name=RG,
                job_name=JOB,
                config_hash="h",
                start_mode="Now",
            ),
        )


def test_provider_survives_the_trip_to_the_provider_process():
    """Pulumi pickles the provider with dill; the provider host must rebuild it by import."""
    import subprocess
    from pathlib import Path

    from pulumi.dynamic.dynamic import serialize_provider

    code = (
        "import base64, sys, dill; "
        "p = dill.loads(base64.b64decode(sys.stdin.read())); "
        "print(type(p).__module__, type(p).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=serialize_provider(sj.StreamJobStartProvider()),
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["components.stream_job", "StreamJobStartProvider"]
