"""`batchscore pipeline run` against azure-ai-ml's own entities: the exported schedule as the
service returns it, submitted through a recording ``jobs`` that runs the job's own
``_validate()`` and ``_to_rest_object()`` (tests/fixtures/aml_service.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchscore.aml import run as aml_run
from batchscore.cli import main
from batchscore.commands import pipeline as pipeline_command
from tests.fixtures.aml_service import (
    STEPS,
    WORKSPACE_ID,
    export_scoring,
    export_training,
    recording_client,
    service_schedule,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PARALLEL_TRACEBACK = """\
10:00:01 ERROR scoring.steps.score: mini-batch 17 (Device='dev-7' Sensor='t') failed
Traceback (most recent call last):
  File "/mnt/azureml/cr/j/code/steps/score.py", line 231, in run
    result = _predictor.score(frame, name=label)
scoring.models.store.ModelLoadError: Device='dev-7' Sensor='t': model file is corrupt
"""


@pytest.fixture
def schedule_file(tmp_path_factory) -> Path:
    return export_scoring(tmp_path_factory.mktemp("aml"))


@pytest.fixture
def use(monkeypatch):
    def install(client):
        monkeypatch.setattr(pipeline_command, "CLIENT_FACTORY", lambda workspace: client)
        monkeypatch.setattr(aml_run.time, "sleep", lambda s: None)
        return client

    return install


def story(states, steps=None, logs=None, summary=None):
    """What one submitted run does: parent states, final step states, logs, summary."""
    return lambda name, trigger: {
        "states": states,
        "steps": steps or dict.fromkeys(STEPS, "Completed"),
        "logs": logs or {},
        "summary": summary or {},
    }


ARGS = [
    *("pipeline", "run", "--workspace-id", WORKSPACE_ID),
    *("--schedule-name", "batchscore-scoring"),
]


def _trigger_sent(client, job) -> str:
    """The trigger_time the submission carried over the wire (its REST body)."""
    return client.jobs.rest[job.name].properties.inputs["trigger_time"].value


def test_success_prints_where_the_predictions_landed(use, capsys, schedule_file):
    summary = {"status": "succeeded", "window": "window=20261201T100000Z", "rows_published": 1200,
               "rows_missing": 0, "anomalies": 7}  # fmt: skip
    client = use(recording_client(schedule_file, story(["Running", "Completed"], summary=summary)))
    args = [*ARGS, "--end", "2026-12-01T10:00:00Z", "--wait", "--poll-seconds", "0.01"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1200 rows published" in out
    assert "azureml://datastores/predictions/paths/scored/window=20261201T100000Z/" in out
    (job,) = client.jobs.submitted
    assert _trigger_sent(client, job) == "2026-12-01T10:00:00Z", "the window asked for"
    assert job.name.startswith("batchscore-scoring-manual-")
    assert client.jobs.downloads == [(f"{job.name}-publish", "summary")]


def test_item_assignment_of_the_trigger_is_what_azure_ai_ml_refuses(schedule_file):
    """The seam the submit code keeps: on the service's form of the schedule, item assignment
    leaves a bare string the SDK cannot serialize; attribute assignment passes its checks."""
    job = service_schedule(schedule_file).create_job
    job.inputs["trigger_time"] = "2026-12-01T10:00:00Z"
    with pytest.raises(AttributeError, match="_to_job_input"):
        job._validate()
        job._to_rest_object()
    job = service_schedule(schedule_file).create_job
    job.inputs.trigger_time = "2026-12-01T10:00:00Z"
    assert job._validate().passed
    assert job._to_rest_object().properties.inputs["trigger_time"].value == "2026-12-01T10:00:00Z"


def test_every_step_of_the_deployed_job_is_named_for_its_step(schedule_file):
    """The child jobs show each node's display name: it must be the step's name."""
    job = service_schedule(schedule_file).create_job
    assert {name: node.display_name for name, node in job.jobs.items()} == {
        step: step for step in STEPS
    }


def test_a_failing_step_surfaces_its_first_real_error_not_systemexit_42(use, capsys, schedule_file):
    logs = {
        "score": {
            "logs/job_error.txt": "SystemExit: 42\n",
            "logs/user/error/10.0.0.4/process002.txt": PARALLEL_TRACEBACK,
            "user_logs/std_log_0.txt": "starting\nSystemExit: 42\n",
        }
    }
    steps = {"extract": "Completed", "score": "Failed"}
    use(recording_client(schedule_file, story(["Running", "Failed"], steps=steps, logs=logs)))
    assert main([*ARGS, "--wait", "--poll-seconds", "0.01"]) == 1
    err = capsys.readouterr().err
    assert (
        "Failed" in err and "step score, artifacts/logs/user/error/10.0.0.4/process002.txt" in err
    )
    assert "ModelLoadError: Device='dev-7' Sensor='t': model file is corrupt" in err
    assert "mini-batch 17" in err
    assert "SystemExit" not in err


def test_an_empty_window_exits_3(use, schedule_file):
    use(recording_client(schedule_file, story(["Completed"], summary={"status": "empty_window"})))
    assert main([*ARGS, "--wait"]) == 3


def test_without_wait_it_submits_and_returns(use, capsys, schedule_file):
    client = use(recording_client(schedule_file, story(["Running"])))
    assert main(ARGS) == 0
    (job,) = client.jobs.submitted
    assert _trigger_sent(client, job) == "now"
    assert "submitted batchscore-scoring-manual-" in capsys.readouterr().out


def test_end_latest_is_left_to_the_extract_step(use, capsys, schedule_file):
    client = use(recording_client(schedule_file, story(["Running"])))
    assert main([*ARGS, "--end", "latest"]) == 0
    (job,) = client.jobs.submitted
    assert _trigger_sent(client, job) == "latest"
    assert "Traceback" not in capsys.readouterr().err


def test_without_a_login_it_says_az_login_and_exits_1(monkeypatch, capsys):
    """The real MLClient with a credential that finds no login (no network is reached)."""
    from azure.ai.ml import MLClient
    from azure.identity import EnvironmentCredential

    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_login(workspace):
        return MLClient(
            credential=EnvironmentCredential(),
            subscription_id=workspace.subscription_id,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
        )

    monkeypatch.setattr(pipeline_command, "CLIENT_FACTORY", no_login)
    assert main(ARGS) == 1
    err = capsys.readouterr().err
    assert "run `az login`" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_schedule_that_is_not_there_is_named(use, capsys, schedule_file):
    use(recording_client(schedule_file, story(["Running"])))
    argv = ["pipeline", "run", "--workspace-id", WORKSPACE_ID, "--schedule-name", "nope"]
    assert main(argv) == 2
    assert "schedule 'nope' not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["pipeline", "run"], "needs --stack"),
        (["pipeline", "run", "--schedule-name", "x"], "go together"),
        (["pipeline", "run", "--workspace-id", "/nope", "--schedule-name", "x"], "is not /subs"),
        ([*ARGS, "--end", "yesterday-ish"], "--end 'yesterday-ish'"),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, expected, capsys, use, schedule_file):
    client = use(recording_client(schedule_file, story([])))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not client.jobs.submitted


def test_first_user_error_prefers_the_traceback_over_generic_lines(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "job_error.txt").write_text("Error: SystemExit: 42\n")
    assert aml_run.first_user_error(tmp_path) is None
    (tmp_path / "user_logs").mkdir()
    (tmp_path / "user_logs" / "std_log.txt").write_text(PARALLEL_TRACEBACK)
    where, text = aml_run.first_user_error(tmp_path)
    assert where == "user_logs/std_log.txt" and text.endswith("model file is corrupt")


def test_the_training_pipeline_runs_now_and_reports_its_promote_summary(use, capsys, tmp_path):
    schedule_file = export_training(tmp_path)
    summary = {"status": "succeeded", "generation": 4, "promoted": 90, "added": 2, "rejected": 8,
               "failed": 0, "kept": 0}  # fmt: skip
    steps = dict.fromkeys(("extract", "train", "promote"), "Completed")
    client = use(
        recording_client(schedule_file, story(["Running", "Completed"], steps, summary=summary))
    )
    args = [*("pipeline", "run", "--workspace-id", WORKSPACE_ID),
            *("--schedule-name", "batchscore-training", "--pipeline", "training"),
            *("--wait", "--poll-seconds", "0.01")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "succeeded, generation 4 (90 promoted, 2 added, 8 rejected, 0 failed, 0 kept)" in out
    (job,) = client.jobs.submitted
    assert client.jobs.downloads == [(f"{job.name}-promote", "summary")], "the promote step's"
    failed = {**summary, "status": "failed"}
    use(recording_client(schedule_file, story(["Completed"], steps, summary=failed)))
    assert main(args) == 1


def test_training_needs_the_training_schedule_output(monkeypatch, capsys):
    outputs = {"mlWorkspaceId": WORKSPACE_ID, "scoringScheduleName": "sched"}
    monkeypatch.setattr(pipeline_command, "stack_outputs", lambda stack: outputs)
    assert main(["pipeline", "run", "--stack", "dev", "--pipeline", "training"]) == 2
    assert "no output trainingScheduleName" in capsys.readouterr().err
