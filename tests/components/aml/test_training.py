"""The training pipeline's Azure ML definitions: built from the stack's settings, validated by
azure-ai-ml itself (``_validate()``, a round trip through the REST form) and exported as the
YAML files `az ml` would submit, loaded back and validated."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest

with warnings.catch_warnings():  # azure-ai-ml's schemas warn about marshmallow 4 on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from azure.ai.ml.entities import JobSchedule, PipelineJob

    from batchscore.aml import export
    from components.aml.pipeline import TRIGGER_TIME_MACRO
    from components.aml.training import (
        build_training_components,
        training_pipeline_job,
        training_schedule,
    )
    from components.config.pipeline import PipelineSettings, PipelineTarget
    from components.config.training import TrainingSettings

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

TARGET = PipelineTarget(
    image="crdev.azurecr.io/batchscore-scoring@sha256:" + "1f" * 32,
    compute="cpu-cluster",
    sql_server="sql-dev",
    sql_database="sensors",
    identity_client_id="11111111-2222-3333-4444-555555555555",
)
SETTINGS = PipelineSettings(
    partitioning="pair", max_concurrency_per_instance=3, timeout_seconds=900
)
TRAINING = TrainingSettings(
    lookback_days=7,
    holdout_percent=25,
    instance_count=2,
    generations_to_keep=4,
    gate_min_rows=50,
    gate_max_flag_rate_delta_percent=3,
    alert_rejected_percent=10,
    cron="30 3 * * *",
)


@pytest.fixture(scope="module")
def built():
    return build_training_components(SETTINGS, TRAINING, TARGET, code_hash="c0de")


@pytest.fixture(scope="module")
def job(built):
    return training_pipeline_job(SETTINGS, TRAINING, TARGET, built)


def test_the_steps_carry_the_training_settings(built, job):
    assert "--partitioning shard" in built.extract.command, "training always reads shards"
    assert job.jobs["extract"].inputs["lookback_minutes"]._data == 7 * 1440
    train = built.train.component
    assert train.partition_keys == ["Shard"] and train.inputs["readings"].mode == "direct"
    assert train.task.entry_script == "steps/train.py"
    assert train.resources.instance_count == 2, "trainInstanceCount, not the scoring count"
    assert train.max_concurrency_per_instance == 3 and train.retry_settings.timeout == 900
    assert "--holdout-percent 25 --retrain all" in train.task.program_arguments
    assert "runs" not in train.inputs
    command = built.promote.command
    for flag in ("--keep 4", "--min-rows 50", "--max-flag-rate-delta-percent 3",
                 "--max-rejected-percent 10", "--models ${{outputs.models}}"):  # fmt: skip
        assert flag in command
    for item in built.all():
        component = getattr(item, "component", item)
        assert component.is_deterministic is False


def test_the_pipeline_writes_the_store_scoring_reads_as_the_cluster_identity(job):
    assert job.inputs["trigger_time"]._data == TRIGGER_TIME_MACRO
    assert job.inputs["models"].path == TARGET.models_uri()
    assert job.outputs["models"].path == TARGET.models_uri()
    assert job.outputs["models"].mode == "rw_mount"
    assert set(job.jobs) == {"extract", "train", "promote"}
    for name, node in job.jobs.items():
        assert node.identity.type == "managed_identity", name
        assert node.environment_variables["AZURE_CLIENT_ID"] == TARGET.identity_client_id
    promote = job.jobs["promote"]
    assert promote.inputs["candidates"]._data._data_binding() == (
        "${{parent.jobs.train.outputs.candidates}}"
    )
    assert job.settings.force_rerun is True


def test_azure_ai_ml_validates_the_job_and_its_rest_form(job):
    assert job._validate().passed, job._validate()
    back = PipelineJob._from_rest_object(job._to_rest_object())
    assert set(back.jobs) == {"extract", "train", "promote"}
    assert back.inputs["trigger_time"]._data == TRIGGER_TIME_MACRO
    assert back.outputs["models"].path == TARGET.models_uri()


def test_the_schedule_round_trips_as_the_service_returns_it(job):
    schedule = training_schedule("train-dev", SETTINGS, TRAINING, job)
    back = JobSchedule._from_rest_object(schedule._to_rest_object())
    assert back.trigger.expression == "30 3 * * *"
    assert back.is_enabled is True
    disabled = training_schedule("t", SETTINGS, replace(TRAINING, enabled=False), job)
    assert disabled._to_rest_object().properties.is_enabled is False


def test_retrain_needed_reads_the_scoring_runs():
    needed = replace(TRAINING, retrain="needed")
    built = build_training_components(SETTINGS, needed, TARGET, code_hash="c0de")
    assert (
        "--retrain needed --runs ${{inputs.runs}}" in built.train.component.task.program_arguments
    )
    job = training_pipeline_job(SETTINGS, needed, TARGET, built)
    assert job.inputs["runs"].path == TARGET.predictions_uri()
    assert job._validate().passed


def test_exported_yaml_loads_back_and_passes_offline_validation(tmp_path):
    built = build_training_components(SETTINGS, TRAINING, TARGET, version="1")
    rendered = export.Rendered()
    files = {}
    for item in built.all():
        component = getattr(item, "component", item)
        name = component.name.removeprefix("batchscore_") + export.COMPONENT_SUFFIX
        files[component.name] = name
        rendered.add(name, "component", export.component_dict(component, tmp_path))
    job = training_pipeline_job(SETTINGS, TRAINING, TARGET, built, trigger_time="now")
    rendered.add("training.job.yml", "job", export.pipeline_dict(job, files))
    schedule = training_schedule("train-dev", SETTINGS, TRAINING, job)
    rendered.add(
        "training.schedule.yml", "schedule", export.schedule_dict(schedule, "training.job.yml")
    )
    export.write(rendered, tmp_path)
    export.validate_folder(tmp_path, rendered.kinds)  # raises naming the file
    broken = (tmp_path / "train.component.yml").read_text().replace("steps/train.py", "nope.py")
    (tmp_path / "train.component.yml").write_text(broken)
    with pytest.raises(export.ExportValidationError, match="entry_script"):
        export.validate_folder(tmp_path, rendered.kinds)


def test_every_step_of_the_training_job_is_named_for_its_step(job):
    """`pipeline run --pipeline training` finds the promote step's summary by this name."""
    assert {key: node.display_name for key, node in job.jobs.items()} == {
        "extract": "extract",
        "train": "train",
        "promote": "promote",
    }
