"""`batchscore pipeline backfill`: one run per window of the schedule, bounded, followed, with
azure-ai-ml's own entities (the exported schedule as the service returns it, submissions
through the job's own ``_validate()`` and ``_to_rest_object()``) and the run summaries in a
real Blob endpoint (Azurite)."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest

from batchscore.aml import backfill
from batchscore.aml import run as aml_run
from batchscore.cli import main
from batchscore.commands import pipeline as pipeline_command
from components.config.pipeline import PipelineSettings
from tests.fixtures.aml_service import STEPS, WORKSPACE_ID, export_scoring, recording_client

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ARGS = [
    *("pipeline", "backfill", "--workspace-id", WORKSPACE_ID),
    *("--schedule-name", "batchscore-scoring", "--poll-seconds", "0.01"),
]
TRACEBACK = (
    "Traceback (most recent call last):\n  File x\nValueError: table dbo.SensorReadings is gone\n"
)


@pytest.fixture(scope="module")
def schedule_file(tmp_path_factory):
    return export_scoring(tmp_path_factory.mktemp("aml"))


@pytest.fixture
def use(monkeypatch):
    def install(client):
        monkeypatch.setattr(pipeline_command, "CLIENT_FACTORY", lambda workspace: client)
        monkeypatch.setattr(aml_run.time, "sleep", lambda s: None)
        monkeypatch.setattr(backfill.time, "sleep", lambda s: None)
        return client

    return install


def _summary(end: str, status: str = "succeeded", rows: int = 12) -> dict:
    stamp = pd.Timestamp(end)
    return {
        "window": f"window={stamp.strftime('%Y%m%dT%H%M%SZ')}",
        "window_start": (stamp - pd.Timedelta(hours=1)).isoformat(),
        "window_end": stamp.isoformat(),
        "status": status,
        "rows_extracted": rows,
        "rows_published": rows,
    }


def outcome(failing: set[str] = frozenset(), states=("Running", "Running", "Completed")):
    """Each window's run: completes with a summary, or fails in its extract step."""

    def story(name: str, trigger: str) -> dict:
        if trigger in failing:
            return {
                "states": ["Running", "Failed"],
                "steps": {"extract": "Failed"},
                "logs": {"extract": {"user_logs/std_log.txt": TRACEBACK}},
            }
        return {
            "states": list(states),
            "steps": dict.fromkeys(STEPS, "Completed"),
            "summary": _summary(trigger),
        }

    return story


@pytest.fixture
def predictions(azurite):
    """A fresh predictions container holding the summaries of two earlier runs: 11:00 done,
    12:00 failed (its summary says so: not published)."""
    from azure.storage.blob import BlobServiceClient

    name = f"predictions-{uuid.uuid4().hex[:8]}"
    container = BlobServiceClient.from_connection_string(azurite).get_container_client(name)
    container.create_container()
    for end, status in (("2026-12-01T11:00:00Z", "succeeded"), ("2026-12-01T12:00:00Z", "failed")):
        summary = _summary(end, status)
        container.upload_blob(f"scored/{summary['window']}/summary.json", json.dumps(summary))
    return ["--connection-string", azurite, "--container", name]


def _triggers(client) -> list[str]:
    """The trigger_time of every submission, as it went over the wire."""
    return [
        client.jobs.rest[job.name].properties.inputs["trigger_time"].value
        for job in client.jobs.submitted
    ]


def test_a_gap_is_closed_window_by_window_skipping_what_is_published(
    use, schedule_file, predictions, capsys
):
    client = use(recording_client(schedule_file, outcome(failing={"2026-12-01T13:00:00Z"})))
    window = ["--from", "2026-12-01T10:00:00Z", "--to", "2026-12-01T14:30:00Z"]
    assert main([*ARGS, *window, "--max-parallel", "2", *predictions]) == 1
    out = capsys.readouterr().out
    # hourly cron: 10, 11, 12, 13, 14; 11:00 is published; 12:00's summary says failed
    assert _triggers(client) == [
        "2026-12-01T10:00:00Z",
        "2026-12-01T12:00:00Z",
        "2026-12-01T13:00:00Z",
        "2026-12-01T14:00:00Z",
    ]
    assert all(job.name.startswith("batchscore-scoring-backfill-") for job in client.jobs.submitted)
    assert client.jobs.active_peak == 2, "never more than --max-parallel runs at a time"
    assert "5 window(s) of '0 * * * *' (UTC): 4 to run, 1 already published" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("2026-")}
    assert lines["2026-12-01T11:00:00Z"].split()[1] == "published"
    assert lines["2026-12-01T10:00:00Z"].split()[1:3] == ["succeeded", "12"]
    assert "Failed" in lines["2026-12-01T13:00:00Z"]
    assert "extract: ValueError: table dbo.SensorReadings is gone" in lines["2026-12-01T13:00:00Z"]
    assert "4 of 5 windows closed" in out
    assert "step extract: Running" in out, "progress of each run is printed"


def test_force_runs_published_windows_again(use, schedule_file, predictions, capsys):
    client = use(recording_client(schedule_file, outcome()))
    window = ["--from", "2026-12-01T11:00:00Z", "--to", "2026-12-01T11:00:00Z", "--force"]
    assert main([*ARGS, *window, *predictions]) == 0
    assert _triggers(client) == ["2026-12-01T11:00:00Z"]
    assert "1 of 1 windows closed" in capsys.readouterr().out


def test_the_wait_is_bounded_and_unfinished_runs_are_not_claimed(use, schedule_file, capsys):
    client = use(recording_client(schedule_file, outcome(states=["Running"] * 10**6)))
    window = ["--from", "2026-12-01T10:00:00Z", "--to", "2026-12-01T12:00:00Z", "--force"]
    argv = [*ARGS, *window, "--max-parallel", "1", "--timeout-minutes", "0.002"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert len(client.jobs.submitted) == 1
    assert "still Running" in out and out.count("not submitted") == 2
    assert "0 of 3 windows closed" in out


def test_windows_follow_the_schedules_cron_in_its_time_zone():
    start, end = pd.Timestamp("2026-07-01T06:00:00"), pd.Timestamp("2026-07-01T09:00:00")
    # 10:15 in Central Europe (summer, UTC+2) is 08:15 UTC
    assert backfill.window_ends("15 10 * * *", "W. Europe Standard Time", start, end) == [
        "2026-07-01T08:15:00Z"
    ]
    assert backfill.window_ends("*/30 * * * *", "UTC", start, start + pd.Timedelta(hours=1)) == [
        "2026-07-01T06:00:00Z",
        "2026-07-01T06:30:00Z",
        "2026-07-01T07:00:00Z",
    ]


def test_the_cadence_is_read_from_the_deployed_schedule(tmp_path):
    settings = PipelineSettings(schedule_cron="30 */2 * * *", schedule_time_zone="UTC")
    client = recording_client(export_scoring(tmp_path, settings), outcome())
    assert backfill.schedule_cadence(client, "batchscore-scoring") == ("30 */2 * * *", "UTC")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--from", "2026-12-01T10:00:00Z", "--to", "2026-12-01T09:00:00Z"], "is after --to"),
        (["--from", "yesterday", "--to", "now"], "--from 'yesterday'"),
        (["--from", "latest", "--to", "now"], "--from latest"),
        (["--from", "2020-01-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z"], "more than 1000"),
        (["--from", "2026-12-01T10:00:00Z", "--to", "now", "--max-parallel", "0"], "at least 1"),
    ],
)
def test_bad_ranges_are_one_line_exit_2(use, schedule_file, capsys, flags, expected):
    client = use(recording_client(schedule_file, outcome()))
    assert main([*ARGS, *flags, "--force"]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not client.jobs.submitted


def test_the_predictions_datastore_names_the_account():
    from azure.ai.ml.entities import AzureBlobDatastore

    store = AzureBlobDatastore(
        name="predictions", account_name="stdev", container_name="predictions"
    )

    class Datastores:
        def get(self, name):
            return store

    client = type("Client", (), {"datastores": Datastores()})()
    assert backfill.datastore_account(client, "predictions") == (
        "https://stdev.blob.core.windows.net",
        "predictions",
    )
