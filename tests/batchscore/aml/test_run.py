"""`batchscore pipeline run` against a recording fake of azure-ai-ml's MLClient that keeps the
SDK's documented rules (a job's files download only once it has ended; job names are unique)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from batchscore.aml import run as aml_run
from batchscore.cli import main
from batchscore.commands import pipeline as pipeline_command

WORKSPACE_ID = (
    "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-dev/providers/"
    "Microsoft.MachineLearningServices/workspaces/mlw-dev"
)
PARALLEL_TRACEBACK = """\
10:00:01 ERROR scoring.steps.score: mini-batch 17 (Device='dev-7' Sensor='t') failed
Traceback (most recent call last):
  File "/mnt/azureml/cr/j/code/steps/score.py", line 231, in run
    result = _predictor.score(frame, name=label)
scoring.models.store.ModelLoadError: Device='dev-7' Sensor='t': model file is corrupt
"""


class FakeJobs:
    def __init__(self, statuses, children, logs, summary):
        self.statuses = list(statuses)
        self.children = children
        self.logs = logs
        self.summary = summary
        self.submitted = []
        self.downloads = []
        self.current = "NotStarted"

    def create_or_update(self, job):
        if any(j.name == job.name for j in self.submitted):
            raise RuntimeError(f"job {job.name} exists")
        self.submitted.append(job)
        return SimpleNamespace(name=job.name, status="NotStarted", studio_url="https://studio/x")

    def get(self, name):
        if self.statuses:
            self.current = self.statuses.pop(0)
        return SimpleNamespace(name=name, status=self.current, studio_url="https://studio/x")

    def list(self, parent_job_name):
        return [SimpleNamespace(**child) for child in self.children]

    def download(self, name, *, download_path, output_name=None, all=False):
        status = next((c["status"] for c in self.children if c["name"] == name), None)
        if status not in aml_run.TERMINAL:  # the SDK refuses: "Download is allowed only in..."
            raise RuntimeError(f"This job is in state {status}")
        self.downloads.append((name, output_name))
        root = Path(download_path)
        if output_name == "summary":
            target = root / "named-outputs" / "summary" / "summary.json"
            target.parent.mkdir(parents=True)
            target.write_text(json.dumps(self.summary))
            return
        for relative, text in self.logs.get(name, {}).items():
            path = root / "artifacts" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def fake_client(statuses, children, logs=None, summary=None):
    schedule_job = SimpleNamespace(inputs={"trigger_time": "${{creation_context.trigger_time}}"})
    schedule_job.name = None
    schedules = SimpleNamespace(
        get=lambda name: SimpleNamespace(name=name, create_job=schedule_job)
    )
    return SimpleNamespace(
        schedules=schedules, jobs=FakeJobs(statuses, children, logs or {}, summary or {})
    )


@pytest.fixture
def use(monkeypatch):
    def install(client):
        monkeypatch.setattr(pipeline_command, "CLIENT_FACTORY", lambda workspace: client)
        monkeypatch.setattr(aml_run.time, "sleep", lambda s: None)
        return client

    return install


ARGS = ["pipeline", "run", "--workspace-id", WORKSPACE_ID, "--schedule-name", "sched"]


def test_success_prints_where_the_predictions_landed(use, capsys):
    summary = {"status": "succeeded", "window": "window=20261201T100000Z", "rows_published": 1200,
               "rows_missing": 0, "anomalies": 7}  # fmt: skip
    children = [
        {"name": "c1", "display_name": "extract", "status": "Completed"},
        {"name": "c2", "display_name": "score", "status": "Completed"},
        {"name": "c3", "display_name": "publish", "status": "Completed"},
    ]
    client = use(fake_client(["Running", "Completed"], children, summary=summary))
    args = [*ARGS, "--end", "2026-12-01T10:00:00Z", "--wait", "--poll-seconds", "0.01"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1200 rows published" in out
    assert "azureml://datastores/predictions/paths/scored/window=20261201T100000Z/" in out
    (job,) = client.jobs.submitted
    assert job.inputs["trigger_time"] == "2026-12-01T10:00:00Z", "the window asked for"
    assert job.name.startswith("sched-manual-")
    assert client.jobs.downloads == [("c3", "summary")]


def test_a_failing_step_surfaces_its_first_real_error_not_systemexit_42(use, capsys):
    children = [
        {"name": "c1", "display_name": "extract", "status": "Completed"},
        {"name": "c2", "display_name": "score", "status": "Failed"},
    ]
    logs = {
        "c2": {
            "logs/job_error.txt": "SystemExit: 42\n",
            "logs/user/error/10.0.0.4/process002.txt": PARALLEL_TRACEBACK,
            "user_logs/std_log_0.txt": "starting\nSystemExit: 42\n",
        }
    }
    use(fake_client(["Running", "Failed"], children, logs=logs))
    assert main([*ARGS, "--wait", "--poll-seconds", "0.01"]) == 1
    err = capsys.readouterr().err
    assert (
        "Failed" in err and "step score, artifacts/logs/user/error/10.0.0.4/process002.txt" in err
    )
    assert "ModelLoadError: Device='dev-7' Sensor='t': model file is corrupt" in err
    assert "mini-batch 17" in err
    assert "SystemExit" not in err


def test_an_empty_window_exits_3(use, capsys):
    children = [{"name": "c3", "display_name": "publish", "status": "Completed"}]
    client = fake_client(["Completed"], children, summary={"status": "empty_window"})
    use(client)
    assert main([*ARGS, "--wait"]) == 3


def test_without_wait_it_submits_and_returns(use, capsys):
    client = use(fake_client(["Running"], []))
    assert main(ARGS) == 0
    assert (
        len(client.jobs.submitted) == 1 and client.jobs.submitted[0].inputs["trigger_time"] == "now"
    )
    assert "submitted sched-manual-" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["pipeline", "run"], "needs --stack"),
        (["pipeline", "run", "--schedule-name", "x"], "go together"),
        (["pipeline", "run", "--workspace-id", "/nope", "--schedule-name", "x"], "is not /subs"),
        ([*ARGS, "--end", "yesterday-ish"], "--end 'yesterday-ish'"),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, expected, capsys, use):
    use(fake_client([], []))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_first_user_error_prefers_the_traceback_over_generic_lines(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "job_error.txt").write_text("Error: SystemExit: 42\n")
    assert aml_run.first_user_error(tmp_path) is None
    (tmp_path / "user_logs").mkdir()
    (tmp_path / "user_logs" / "std_log.txt").write_text(PARALLEL_TRACEBACK)
    where, text = aml_run.first_user_error(tmp_path)
    assert where == "user_logs/std_log.txt" and text.endswith("model file is corrupt")


def test_the_training_pipeline_runs_now_and_reports_its_promote_summary(use, capsys):
    summary = {"status": "succeeded", "generation": 4, "promoted": 90, "added": 2, "rejected": 8,
               "failed": 0, "kept": 0}  # fmt: skip
    children = [
        {"name": "t1", "display_name": "extract", "status": "Completed"},
        {"name": "t2", "display_name": "train", "status": "Completed"},
        {"name": "t3", "display_name": "promote", "status": "Completed"},
    ]
    client = use(fake_client(["Running", "Completed"], children, summary=summary))
    args = [*ARGS, "--pipeline", "training", "--wait", "--poll-seconds", "0.01"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "succeeded, generation 4 (90 promoted, 2 added, 8 rejected, 0 failed, 0 kept)" in out
    assert client.jobs.downloads == [("t3", "summary")], "the promote step's summary"
    client = use(fake_client(["Completed"], children, summary={**summary, "status": "failed"}))
    assert main(args) == 1


def test_training_needs_the_training_schedule_output(monkeypatch, capsys):
    outputs = {"mlWorkspaceId": WORKSPACE_ID, "scoringScheduleName": "sched"}
    monkeypatch.setattr(pipeline_command, "stack_outputs", lambda stack: outputs)
    assert main(["pipeline", "run", "--stack", "dev", "--pipeline", "training"]) == 2
    assert "no output trainingScheduleName" in capsys.readouterr().err
