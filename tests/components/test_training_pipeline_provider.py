"""The training pipeline's dynamic provider, against the recording fake ML client of the
scoring provider's tests: the same machinery (register once per version, upsert the schedule,
disable before delete, refresh reports drift) around the training components."""

from __future__ import annotations

import pytest

from components.config.training import TrainingSettings
from components.providers import common
from components.providers import scoring_pipeline as sp
from components.providers import training_pipeline as tp
from tests.components.test_scoring_pipeline_provider import (
    FakeMLClient,
    RecordingSleep,
    props,
)

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


def training_props(**training):
    return props(
        scheduleName="training-dev-1a2b3c4d",
        training=TrainingSettings(**training).to_mapping(),
    )


@pytest.fixture
def fake(monkeypatch):
    client = FakeMLClient()
    monkeypatch.setattr(sp, "CLIENT_FACTORY", lambda p: client)
    monkeypatch.setattr(sp, "RETRY", common.RetryPolicy(sleep=RecordingSleep()))
    return client


def test_create_registers_the_training_components_and_schedules_them(fake):
    provider = tp.TrainingPipelineProvider()
    result = provider.create(training_props(cron="15 4 * * *", instance_count=1))
    registered = [c[1] for c in fake.named("components.create_or_update")]
    assert registered == ["batchscore_extract", "batchscore_train", "batchscore_promote"]
    schedule = fake.schedules.store["training-dev-1a2b3c4d"]
    assert schedule.trigger.expression == "15 4 * * *"
    assert set(schedule.create_job.jobs) == {"extract", "train", "promote"}
    assert result.outs["cronExpression"] == "15 4 * * *"
    assert set(result.outs["componentVersions"]) == set(registered)
    assert result.outs["training"]["trainCron"] == "15 4 * * *"
    # an update with the same content registers nothing again
    provider.update(result.id, result.outs, training_props(cron="15 4 * * *"))
    assert len(fake.named("components.create_or_update")) == 3


def test_check_names_a_bad_training_setting_and_auto_names_the_schedule():
    news = training_props()
    news["scheduleName"] = None
    news["training"] = {**news["training"], "trainHoldoutPercent": 99}
    result = tp.TrainingPipelineProvider().check({}, news)
    assert [f.property for f in result.failures] == ["training"]
    assert "trainHoldoutPercent" in result.failures[0].reason
    assert result.inputs["scheduleName"].startswith("batchscore-training-")


def test_a_changed_training_setting_is_an_update_in_place():
    olds = training_props()
    diff = tp.TrainingPipelineProvider().diff("id", olds, training_props(gate_min_rows=10))
    assert diff.changes and not diff.replaces


def test_refresh_reads_the_cron_back_into_the_training_settings(fake):
    provider = tp.TrainingPipelineProvider()
    created = provider.create(training_props())
    fake.schedules.store["training-dev-1a2b3c4d"]._is_enabled = False
    read = provider.read(created.id, created.outs)
    assert read.inputs["training"]["trainScheduleEnabled"] is False
    assert read.inputs["settings"]["scheduleCron"] == "0 * * * *", "scoring's cron untouched"


def test_delete_disables_then_deletes(fake):
    provider = tp.TrainingPipelineProvider()
    created = provider.create(training_props())
    provider.delete(created.id, created.outs)
    order = [c[0] for c in fake.calls if c[0].startswith("schedules.begin")]
    assert order[-2:] == ["schedules.begin_disable", "schedules.begin_delete"]
    assert "training-dev-1a2b3c4d" not in fake.schedules.store
