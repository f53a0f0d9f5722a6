"""The Azure ML parallel-job rules under the local runner: retries, timeouts, dead workers,
thresholds and early abort, warnings in the summary, init/shutdown. Toy scripts only."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

from scoring.runner import RunSettings, run_parallel
from scoring.runner.inputs import KIND_FILES, MiniBatchTask
from scoring.runner.processes import start_method
from scoring.runner.workers import WorkerConfig, WorkerHandle, WorkerState
from tests.fixtures.toy_data import write_extract

SCRIPTS = Path(__file__).resolve().parents[2] / "fixtures" / "entry_scripts"


def _run(tmp_path: Path, script: str, *args: str, devices: int = 3, **overrides):
    """Run a toy script over a small extract; return (summary, summary.json as dict)."""
    source = tmp_path / "in"
    if not source.exists():
        write_extract(source, devices=devices, rows=overrides.pop("rows", 5))
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    settings = RunSettings(
        input_path=source,
        output_dir=tmp_path / "out",
        entry_script=SCRIPTS / script,
        program_arguments=["--marker-dir", str(markers), *args],
        workers=overrides.pop("workers", 2),
        show_progress=False,
        **overrides,
    )
    summary = run_parallel(settings)
    return summary, json.loads((tmp_path / "out" / "summary.json").read_text())


def _attempts(tmp_path: Path, key: str) -> int:
    return len((tmp_path / "markers" / f"{key}.attempts").read_text().splitlines())


def _failed(data: dict) -> dict[str, dict]:
    return {entry["label"]: entry for entry in data["failed_mini_batches"]}


def test_retry_then_success_keeps_every_row(tmp_path):
    summary, data = _run(tmp_path, "flaky.py", "--fail-attempts", "1", devices=2)
    assert summary.status == "succeeded" and summary.exit_code == 0
    assert data["mini_batches"] == {
        "total": 4,
        "succeeded": 4,
        "failed": 0,
        "not_run": 0,
        "retried": 4,
    }
    assert data["items"]["failed"] == 0
    predictions = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert len(predictions) == 20
    assert set(predictions["Attempt"]) == {2}  # only the successful attempt's rows
    assert _attempts(tmp_path, "dev-000_temp") == 2


def test_retry_then_failure_tries_one_plus_max_retries_times(tmp_path):
    summary, data = _run(
        tmp_path, "raise_for_partition.py", "--fail-device", "dev-001", max_retries=3
    )
    # thresholds are -1: failures are tolerated, so the rest is published; but the run is not
    # a success when rows did not come back
    assert (summary.status, summary.exit_code) == ("incomplete", 1)
    assert summary.failure == (
        "10 of 30 items did not come back (within the thresholds: the rest are published)"
    )
    assert _attempts(tmp_path, "dev-001_temp") == 4
    assert _attempts(tmp_path, "dev-000_temp") == 1
    failed = _failed(data)
    assert set(failed) == {"Device=dev-001/Sensor=temp", "Device=dev-001/Sensor=vib"}
    entry = failed["Device=dev-001/Sensor=temp"]
    assert entry["attempts"] == 4 and entry["items_failed"] == 5
    assert entry["reasons"][-1].startswith("ValueError: no model for device dev-001 (at ")
    assert "raise_for_partition.py" in entry["reasons"][-1]
    assert data["items"] == {"in": 30, "returned": 20, "failed": 10, "not_run": 0, "unassigned": 0}
    predictions = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert "dev-001" not in set(predictions["Device"]) and len(predictions) == 20


def test_mini_batch_error_threshold_fails_the_run_and_names_the_offenders(tmp_path):
    summary, data = _run(
        tmp_path,
        "raise_for_partition.py",
        "--fail-device",
        "dev-001",
        max_retries=0,
        mini_batch_error_threshold=1,
        workers=1,
    )
    assert summary.status == "failed" and summary.exit_code == 1
    assert summary.failure == "mini_batch_error_threshold exceeded: 2 failed mini-batches > 1"
    assert data["thresholds"]["mini_batch_error_threshold"] == {
        "value": 1,
        "count": 2,
        "exceeded": True,
    }
    assert data["worst_offenders"][0].startswith("#2 Device=dev-001/Sensor=temp: 5 of 5 items")
    assert "ValueError: no model for device dev-001" in data["worst_offenders"][0]
    # abort early: with one worker the last partitions (dev-002) never ran
    assert data["mini_batches"]["not_run"] == 2
    assert not (tmp_path / "markers" / "dev-002_temp.attempts").exists()
    # a failed run publishes no predictions
    assert data["output"]["predictions_file"] is None
    assert not (tmp_path / "out" / "predictions.parquet").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["summary.json"]


def test_mini_batch_error_threshold_equal_to_the_count_passes(tmp_path):
    summary, data = _run(
        tmp_path,
        "raise_for_partition.py",
        "--fail-device",
        "dev-001",
        max_retries=0,
        mini_batch_error_threshold=2,
    )
    assert summary.status == "incomplete"  # not failed: published, but not every row came back
    assert data["thresholds"]["mini_batch_error_threshold"]["count"] == 2


def test_error_threshold_counts_failed_items_not_mini_batches(tmp_path):
    args = ("--fail-device", "dev-000")
    ok, _ = _run(tmp_path / "a", "raise_for_partition.py", *args, max_retries=0, error_threshold=10)
    assert ok.status == "incomplete" and ok.error_threshold.count == 10
    failed, data = _run(
        tmp_path / "b", "raise_for_partition.py", *args, max_retries=0, error_threshold=9
    )
    assert failed.status == "failed"
    assert failed.failure.startswith("error_threshold exceeded: ")
    assert failed.failure.endswith("failed items > 9")
    assert data["thresholds"]["error_threshold"]["exceeded"] is True
    assert data["thresholds"]["mini_batch_error_threshold"]["exceeded"] is False


def test_thresholds_of_minus_one_ignore_every_failure(tmp_path):
    summary, data = _run(
        tmp_path,
        "raise_for_partition.py",
        *("--fail-device", "dev-000", "--fail-device", "dev-001", "--fail-device", "dev-002"),
        max_retries=0,
    )
    assert summary.status == "incomplete"
    assert data["mini_batches"]["failed"] == 6 and data["items"]["failed"] == 30
    assert data["output"]["rows_written"] == 0


def test_short_returns_are_retried_then_kept_and_their_warnings_captured(tmp_path):
    source = tmp_path / "in"
    write_extract(source, devices=1, sensors=("temp",), rows=6, negative_every=3)
    summary, data = _run(tmp_path, "short.py", max_retries=1)
    assert _attempts(tmp_path, "dev-000_temp") == 2  # short counts as a failed attempt
    (entry,) = data["failed_mini_batches"]
    assert entry["reasons"] == ["returned 4 of 6 items", "returned 4 of 6 items"]
    assert entry["items_in"] == 6 and entry["items_returned"] == 4
    assert entry["warning_count"] == 2
    assert entry["warnings"][0].startswith("WARNING toy.short: dropped row TS=2024-01-01 00:00:00")
    # the rows that did score are kept: bad input loses nothing else
    predictions = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert len(predictions) == 4 and (predictions["Value"] >= 0).all()
    assert data["items"] == {"in": 6, "returned": 4, "failed": 2, "not_run": 0, "unassigned": 0}


def test_warnings_of_succeeded_mini_batches_are_listed_and_bounded(tmp_path):
    source = tmp_path / "in"
    write_extract(source, devices=1, sensors=("temp",), rows=20, negative_every=1)
    _, data = _run(tmp_path, "short.py", max_retries=0)
    (entry,) = data["failed_mini_batches"]
    assert entry["warning_count"] == 20 and len(entry["warnings"]) == 5


def test_a_hanging_mini_batch_times_out_and_is_retried_on_a_fresh_worker(tmp_path):
    summary, data = _run(
        tmp_path, "hang.py", "--hang-device", "dev-001", devices=2, timeout_seconds=2
    )
    assert summary.status == "succeeded"
    assert _attempts(tmp_path, "dev-001_temp") == 2 and _attempts(tmp_path, "dev-001_vib") == 2
    assert _attempts(tmp_path, "dev-000_temp") == 1
    assert data["mini_batches"]["retried"] == 2
    assert data["workers"]["processes_started"] == 4  # both hung workers were replaced
    reasons = {entry.reasons[0] for entry in summary.records if entry.reasons}
    assert reasons == {"timed out after 2s"}
    assert len(pd.read_parquet(tmp_path / "out" / "predictions.parquet")) == 20


def test_a_mini_batch_that_always_hangs_fails_with_the_timeout_as_reason(tmp_path):
    summary, data = _run(
        tmp_path,
        "hang.py",
        *("--hang-device", "dev-000", "--always"),
        devices=1,
        timeout_seconds=1,
        max_retries=1,
        workers=2,
    )
    failed = _failed(data)
    assert failed["Device=dev-000/Sensor=temp"]["reasons"] == [
        "timed out after 1s",
        "timed out after 1s",
    ]
    assert failed["Device=dev-000/Sensor=temp"]["items_in"] == 5  # counted from the footer
    assert summary.error_threshold.count == 10


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ((), "worker died with signal SIGKILL"),
        (("--exit-code", "3"), "worker died with exit code 3"),
    ],
)
def test_a_killed_worker_is_replaced_and_its_mini_batch_retried(tmp_path, extra, reason):
    summary, data = _run(
        tmp_path, "kill_self.py", "--kill-device", "dev-001", *extra, devices=2, max_retries=1
    )
    assert summary.status == "succeeded"
    assert _attempts(tmp_path, "dev-001_temp") == 2
    assert data["workers"]["processes_started"] >= 3
    assert len(pd.read_parquet(tmp_path / "out" / "predictions.parquet")) == 20
    retried = [r for r in summary.records if r.attempts == 2]
    assert retried and all(r.reasons == [reason] for r in retried)


def test_a_killed_worker_without_retries_left_fails_its_mini_batch(tmp_path):
    summary, data = _run(
        tmp_path, "kill_self.py", "--kill-device", "dev-000", devices=1, max_retries=0
    )
    assert {e["reasons"][0] for e in data["failed_mini_batches"]} == {
        "worker died with signal SIGKILL"
    }


def test_a_worker_dying_between_mini_batches_loses_nothing(tmp_path):
    summary, data = _run(tmp_path, "exit_later.py", devices=2, workers=1, max_retries=1)
    assert summary.status == "succeeded"
    assert data["workers"]["processes_started"] == 2
    # died during its next mini-batch (retried once) or while idle (nothing to retry)
    reasons = [r.reasons for r in summary.records if r.reasons]
    assert reasons in ([], [["worker died with exit code 5"]])
    assert data["items"]["returned"] == data["items"]["in"] == 20
    assert len(pd.read_parquet(tmp_path / "out" / "predictions.parquet")) == 20


def test_sending_to_a_worker_that_died_idle_assigns_nothing():
    context = multiprocessing.get_context(start_method())
    worker = WorkerHandle(context, WorkerConfig(1, str(SCRIPTS / "echo.py"), []), 60)
    try:
        worker.kill()
        task = MiniBatchTask(index=0, kind=KIND_FILES, label="a.txt", files=["a.txt"])
        assert worker.send_tasks([task], timeout=5) is False
        assert not worker.assigned and worker.state == WorkerState.STARTING
        assert worker.exit_description() == "worker died with signal SIGKILL"
    finally:
        worker.close()


def test_init_failure_fails_the_run_at_once_with_its_reason(tmp_path):
    summary, data = _run(tmp_path, "init_fails.py")
    assert summary.status == "failed"
    assert "init() of init_fails.py failed in worker" in summary.failure
    assert "FileNotFoundError: model store models/ is empty" in summary.failure
    assert data["mini_batches"]["not_run"] == 6


def test_workers_killed_during_init_are_replaced_and_the_run_succeeds(tmp_path):
    summary, data = _run(tmp_path, "init_killed.py", "--deaths", "2", workers=1)
    assert summary.status == "succeeded"
    assert _attempts(tmp_path, "init") == 3
    assert data["workers"]["processes_started"] == 3
    assert data["items"] == {"in": 30, "returned": 30, "failed": 0, "not_run": 0, "unassigned": 0}
    death = "died during init() of init_killed.py (worker died with signal SIGKILL): replaced"
    assert data["notes"] == [f"worker 1 {death}", f"worker 2 {death}"]


def test_the_third_worker_killed_during_init_fails_the_run_naming_the_cause(tmp_path):
    summary, data = _run(tmp_path, "init_killed.py", "--deaths", "99", workers=1)
    assert summary.status == "failed"
    assert summary.failure == (
        "3 workers died during init() of init_killed.py, the last (worker 3): "
        "worker died with signal SIGKILL"
    )
    assert data["workers"]["processes_started"] == 3 and _attempts(tmp_path, "init") == 3
    assert data["mini_batches"]["not_run"] == 6


def test_a_hanging_init_fails_the_run_after_the_start_up_timeout(tmp_path):
    summary, data = _run(tmp_path, "init_hangs.py", init_timeout_seconds=1, workers=1)
    assert summary.status == "failed"
    assert summary.failure == "init() of init_hangs.py did not finish within 1s (worker 1)"
    assert data["workers"]["processes_started"] == 1


def test_init_runs_once_per_worker_and_shutdown_at_the_end(tmp_path):
    shutdown_dir = tmp_path / "shutdown"
    shutdown_dir.mkdir()
    # echo.py asserts that init() ran exactly once before every run()
    summary, _ = _run(tmp_path, "echo.py", "--shutdown-dir", str(shutdown_dir), workers=2)
    assert summary.status == "succeeded" and not summary.shutdown_errors
    assert len(list(shutdown_dir.iterdir())) == 2


def test_the_context_carries_partition_keys_and_index(tmp_path):
    summary, _ = _run(tmp_path, "echo.py", devices=2)
    predictions = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert (predictions["ModelVersion"] == "toy-" + predictions["Sensor"]).all()
    assert summary.status == "succeeded"


def test_one_argument_run_gets_no_context(tmp_path):
    summary, _ = _run(tmp_path, "echo_no_context.py", devices=1)
    assert summary.status == "succeeded" and summary.rows_written == 10
