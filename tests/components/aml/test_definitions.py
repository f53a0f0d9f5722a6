"""The Azure ML components, pipeline and schedule carry the stack's settings where they matter."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest

with warnings.catch_warnings():  # azure-ai-ml's schemas warn about marshmallow 4 on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from components.aml import components as comps
    from components.aml.pipeline import TRIGGER_TIME_MACRO, build_components, scoring_pipeline_job
    from components.aml.schedule import scoring_schedule
    from components.config.pipeline import PipelineSettings, PipelineTarget

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

IMAGE = "crdev.azurecr.io/batchscore-scoring@sha256:" + "1f" * 32
TARGET = PipelineTarget(
    image=IMAGE,
    compute="cpu-cluster",
    sql_server="sql-dev",
    sql_database="sensors",
    identity_client_id="11111111-2222-3333-4444-555555555555",
)
SETTINGS = PipelineSettings(
    instance_count=3,
    max_concurrency_per_instance=4,
    error_threshold=10,
    mini_batch_error_threshold=2,
    max_retries=5,
    timeout_seconds=900,
    logging_level="WARNING",
    lookback_minutes=30,
)


@pytest.fixture(scope="module")
def built():
    return build_components(SETTINGS, TARGET, code_hash="c0de")


@pytest.fixture(scope="module")
def job(built):
    return scoring_pipeline_job(SETTINGS, TARGET, built)


def test_score_component_is_partitioned_and_takes_every_knob_from_settings(built):
    score = built.score.component
    assert score.type == "parallel"
    assert score.partition_keys == ["Shard"], "shards of whole pairs by default"
    assert score.inputs["readings"].type == "mltable"
    assert score.inputs["readings"].mode == "direct", "tabular partitions need direct mode"
    assert score.input_data == "${{inputs.readings}}"
    assert score.resources.instance_count == 3
    assert score.max_concurrency_per_instance == 4
    assert score.error_threshold == 10
    assert score.mini_batch_error_threshold == 2
    assert score.retry_settings.max_retries == 5
    assert score.retry_settings.timeout == 900
    assert score.logging_level == "WARNING"
    assert score.task.entry_script == "steps/score.py"
    assert score.task.program_arguments.startswith("--models ${{inputs.models}}")
    assert "--predictions-dir ${{outputs.scored}}" in score.task.program_arguments
    assert score.task.append_row_to is None, "parts, not append_row text"
    assert score.outputs["scored"].type == "uri_folder"
    assert score.task.environment.image == IMAGE
    assert score.is_deterministic is False


def test_pair_partitioning_splits_by_device_and_sensor_end_to_end():
    pairs = replace(SETTINGS, partitioning="pair")
    built = build_components(pairs, TARGET, code_hash="c0de")
    assert built.score.component.partition_keys == ["Device", "Sensor"]
    assert "--partitioning pair" in built.extract.command
    shard = build_components(replace(SETTINGS, shard_rows=5000), TARGET, code_hash="c0de")
    assert "--partitioning shard --shard-rows 5000" in shard.extract.command


def test_summary_mode_has_no_append_and_no_publish_step():
    summary = replace(SETTINGS, append_rows=False)
    built = build_components(summary, TARGET, code_hash="c0de")
    assert "--predictions-dir" not in built.score.component.task.program_arguments
    assert built.publish is None
    job = scoring_pipeline_job(summary, TARGET, built)
    assert set(job.jobs) == {"extract", "score"}
    assert not job.outputs


def test_extract_runs_the_cli_with_the_window_and_no_secret(built, job):
    extract = built.extract
    assert extract.command.startswith("python -m scoring.steps.extract --db '${{inputs.db_url}}'")
    assert "--end '${{inputs.trigger_time}}'" in extract.command
    assert "--time-zone '${{inputs.time_zone}}'" in extract.command
    assert "--output ${{outputs.readings}}" in extract.command
    assert extract.outputs["readings"].type == "mltable"
    assert extract.is_deterministic is False
    node = job.jobs["extract"]
    assert node.inputs["lookback_minutes"]._data == 30
    db_url = node.inputs["db_url"]._data
    assert db_url.startswith("mssql+pyodbc://@sql-dev.database.windows.net/sensors?")
    assert "pwd" not in db_url.lower() and "password" not in db_url.lower()


def test_pipeline_takes_the_trigger_time_and_runs_as_the_cluster_identity(job):
    assert job.inputs["trigger_time"]._data == TRIGGER_TIME_MACRO
    assert job.inputs["models"].path == "azureml://datastores/models/paths/store/"
    assert job.settings.force_rerun is True
    assert job.settings.default_compute == "cpu-cluster"
    assert set(job.jobs) == {"extract", "score", "publish"}
    for name, node in job.jobs.items():
        assert node.identity is not None and node.identity.type == "managed_identity", name
        assert node.environment_variables["AZURE_CLIENT_ID"] == TARGET.identity_client_id, name
    publish = job.jobs["publish"]
    assert publish.inputs["extract"]._data._data_binding() == (
        "${{parent.jobs.extract.outputs.readings}}"
    )
    assert publish.inputs["scored"]._data._data_binding() == "${{parent.jobs.score.outputs.scored}}"
    assert job.outputs["predictions"].path == "azureml://datastores/predictions/paths/scored/"
    assert job.outputs["predictions"].mode == "rw_mount"
    assert "summary" in job.outputs


TELEMETRY = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
    "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
)


def test_only_the_publish_step_is_told_where_to_send_the_run_summary(built):
    job = scoring_pipeline_job(
        SETTINGS, replace(TARGET, telemetry_connection_string=TELEMETRY), built
    )
    env = {name: node.environment_variables for name, node in job.jobs.items()}
    assert env["publish"]["APPLICATIONINSIGHTS_CONNECTION_STRING"] == TELEMETRY
    assert env["publish"]["DEFAULT_IDENTITY_CLIENT_ID"] == TARGET.identity_client_id
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" not in env["extract"]
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" not in env["score"]
    without = scoring_pipeline_job(SETTINGS, TARGET, built)
    assert (
        "APPLICATIONINSIGHTS_CONNECTION_STRING" not in without.jobs["publish"].environment_variables
    )
    with pytest.raises(ValueError, match="telemetry_connection_string: an Application Insights"):
        replace(TARGET, telemetry_connection_string="https://not-a-connection-string")


def test_the_model_store_path_passes_the_sdks_own_datastore_parser():
    from azure.ai.ml._utils._storage_utils import AzureMLDatastorePathUri

    parsed = AzureMLDatastorePathUri(TARGET.models_uri())
    assert (parsed.datastore, parsed.path) == ("models", "store/")
    with pytest.raises(Exception, match="Invalid AzureML datastore path URI"):
        AzureMLDatastorePathUri("azureml://datastores/models/paths/")


def test_every_step_is_non_deterministic(built):
    for item in built.all():
        assert comps.component_of(item).is_deterministic is False


def test_versions_are_stable_for_the_same_content_and_change_with_any_input(built):
    def versions(settings=SETTINGS, target=TARGET, code_hash="c0de"):
        again = build_components(settings, target, code_hash=code_hash)
        return {comps.component_of(c).name: comps.component_of(c).version for c in again.all()}

    same = versions()
    assert same == {comps.component_of(c).name: comps.component_of(c).version for c in built.all()}
    assert all(v.startswith("v") and len(v) == 17 for v in same.values())
    changed_image = versions(target=replace(TARGET, image=IMAGE.replace("1f", "2e")))
    assert all(changed_image[n] != same[n] for n in same), "image digest not in the version"
    changed_code = versions(code_hash="beef")
    assert all(changed_code[n] != same[n] for n in same), "code hash not in the version"
    changed_knob = versions(settings=replace(SETTINGS, max_retries=1))
    assert changed_knob["batchscore_score"] != same["batchscore_score"]
    assert changed_knob["batchscore_extract"] == same["batchscore_extract"]


def test_code_hash_follows_file_content(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    first = comps.hash_code_folder(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"\0")
    assert comps.hash_code_folder(tmp_path) == first
    (tmp_path / "a.py").write_text("x = 2\n")
    assert comps.hash_code_folder(tmp_path) != first


def test_schedule_uses_cron_time_zone_and_enabled_state(job):
    settings = replace(
        SETTINGS,
        schedule_cron="30 6 * * 1-5",
        schedule_time_zone="W. Europe Standard Time",
        schedule_enabled=False,
    )
    schedule = scoring_schedule("batchscore-dev-scoring", settings, job)
    assert schedule.trigger.expression == "30 6 * * 1-5"
    assert schedule.trigger.time_zone == "W. Europe Standard Time"
    assert schedule.is_enabled is False
    assert schedule.create_job.inputs["trigger_time"]._data == TRIGGER_TIME_MACRO
    assert schedule._validate().passed


def test_generic_component_over_files_uses_mini_batches(tmp_path):
    script = tmp_path / "my_score.py"
    script.write_text("def init():\n    pass\n\ndef run(mini_batch):\n    return mini_batch\n")
    builder = comps.generic_parallel_component(
        SETTINGS, TARGET, entry_script=script, input_type="uri_folder", mini_batch_size="25"
    )
    component = builder.component
    assert component.mini_batch_size == 25 or component.mini_batch_size == "25"
    assert component.inputs["data"].type == "uri_folder"
    assert not component.partition_keys
    assert component.task.entry_script == "my_score.py"
    assert component.task.code == str(tmp_path)
    assert component.retry_settings.timeout == 900


def test_generic_component_rejects_bad_input_type_and_missing_script(tmp_path):
    with pytest.raises(ValueError, match="--input-type"):
        comps.generic_parallel_component(
            SETTINGS, TARGET, entry_script=tmp_path / "x.py", input_type="csv"
        )
    with pytest.raises(FileNotFoundError, match="--entry-script"):
        comps.generic_parallel_component(
            SETTINGS, TARGET, entry_script=tmp_path / "x.py", input_type="uri_folder"
        )


def test_the_local_runner_reads_the_knobs_the_parallel_job_gets(built):
    """`batchscore score --stack` runs with what the cluster's job was built with."""
    score, local = built.score.component, SETTINGS.local_runner_knobs()
    assert local["workers"] == score.resources.instance_count * score.max_concurrency_per_instance
    assert local["error_threshold"] == score.error_threshold
    assert local["mini_batch_error_threshold"] == score.mini_batch_error_threshold
    assert local["max_retries"] == score.retry_settings.max_retries
    assert local["timeout"] == score.retry_settings.timeout
    assert local["log_level"] == score.logging_level
