"""The StreamJobDefinition provider on its own, against the recording fake of the service:
what it refuses, what refresh reports, and that it patches only what differs."""

from __future__ import annotations

import pytest

from components.providers import common
from components.providers import stream_definition as sd
from components.providers import stream_job as sj
from tests.components.fake_stream_analytics import FakeStreamingJobs

PROPS = {
    "subscriptionId": "sub",
    "resourceGroupName": "rg",
    "jobName": "job",
    "transformationName": "aggregate-readings",
    "settings": {"eventsOutOfOrderPolicy": "Adjust", "outputErrorPolicy": "Drop"},
    "query": "SELECT 1",
    "streamingUnits": 3,
}


class _Client:
    def __init__(self, jobs):
        self.streaming_jobs = jobs
        self.transformations = jobs.transformations


@pytest.fixture
def service(monkeypatch) -> FakeStreamingJobs:
    fake = FakeStreamingJobs(state="Running", query="SELECT 1", units=3)
    fake.settings = {"eventsOutOfOrderPolicy": "Adjust", "outputErrorPolicy": "Drop"}
    monkeypatch.setattr(sj, "management_client", lambda _sub: _Client(fake))
    monkeypatch.setattr(sj, "RETRY", common.RetryPolicy(sleep=lambda _: None))
    return fake


def test_check_refuses_a_setting_it_does_not_patch_and_a_bad_unit_count() -> None:
    news = {**PROPS, "settings": {"sku": "StandardV2"}, "streamingUnits": "three"}
    failures = sd.StreamJobDefinitionProvider().check({}, news).failures
    assert {f.property for f in failures} == {"settings", "streamingUnits"}


def test_a_changed_job_name_replaces_a_changed_query_updates() -> None:
    provider = sd.StreamJobDefinitionProvider()
    assert provider.diff("id", PROPS, {**PROPS, "jobName": "other"}).replaces == ["jobName"]
    changed = provider.diff("id", PROPS, {**PROPS, "query": "SELECT 2"})
    assert changed.changes and not changed.replaces


def test_refresh_reports_a_query_changed_in_the_portal(service) -> None:
    service.transformation.query = "SELECT 42"
    result = sd.StreamJobDefinitionProvider().read("id", dict(PROPS))
    assert result.outs["query"] == "SELECT 42" and result.inputs["query"] == "SELECT 42"
    assert result.outs["settings"]["outputErrorPolicy"] == "Drop"


def test_only_the_units_change_patches_the_transformation_alone(service) -> None:
    patched = sd.apply_definition(_Client(service), {**PROPS, "streamingUnits": 6})
    assert patched == ["transformation"]
    assert [c[0] for c in service.actions()] == ["stop", "patch-transformation"]
    assert (service.transformation.query, service.transformation.streaming_units) == (
        "SELECT 1",
        6,
    )
