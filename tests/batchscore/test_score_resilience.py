"""What a scheduled scoring run must survive, end to end through ``batchscore score``:
bad readings everywhere under the cluster's thresholds, and the whole process group killed
mid-run followed by a re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from batchscore.cli import main
from scoring.data.schema import PREDICTION_SCHEMA
from scoring.runner.output_folder import LOCK_FILE
from tests.fixtures.toy_data import write_extract, write_model_store

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "entry_scripts"
KEYS = ["TS", "Device", "Sensor"]


def test_one_bad_reading_in_every_partition_passes_the_clusters_thresholds(tmp_path, monkeypatch):
    # 6 partitions, each with one reading whose Value is missing: more partitions than the
    # cluster's miniBatchErrorThreshold (5), so failing them would fail the run
    extract = write_extract(tmp_path / "extract", devices=3, rows=8)
    for part in sorted(extract.glob("Device=*/Sensor=*/*.parquet")):
        frame = pd.read_parquet(part)
        frame.loc[3, "Value"] = np.nan
        frame.to_parquet(part, index=False)
    models = write_model_store(tmp_path / "models", devices=3)
    out = tmp_path / "out"
    monkeypatch.chdir(ROOT)
    argv = ["score", "--input", str(extract), "--models", str(models), "--output", str(out)]
    assert main([*argv, "--stack", "dev"]) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    assert summary["thresholds"]["mini_batch_error_threshold"] == {
        "value": 5,
        "count": 0,
        "exceeded": False,
    }
    table = pq.read_table(out / "predictions.parquet")
    assert table.schema.equals(PREDICTION_SCHEMA)
    predictions = table.to_pandas()
    assert len(predictions) == 6 * 8  # every reading answered: the good and the bad
    assert predictions["Status"].value_counts().to_dict() == {"ok": 42, "invalid_value": 6}
    bad = predictions[predictions["Status"] == "invalid_value"]
    assert bad["Value"].isna().all() and bad["Score"].isna().all()
    assert bad["TS"].eq(pd.Timestamp("2024-01-01 00:03")).all()
    assert predictions.loc[predictions["Status"] == "ok", "Score"].notna().all()


@pytest.mark.slow
def test_kill_9_of_the_whole_run_then_a_rerun_leaves_one_complete_predictions_file(tmp_path):
    # Two big partitions fill a row group (256 Ki rows), so the killed run has written its
    # spool file; the third hangs on its first attempt, which is when the group is killed.
    rows = 150_000
    extract = write_extract(tmp_path / "extract", devices=3, sensors=("temp",), rows=rows)
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    hang = [str(SCRIPTS / "hang.py"), "--", "--hang-device", "dev-002"]
    hang += ["--marker-dir", str(markers)]

    assert _score(extract, out, str(SCRIPTS / "echo.py")).returncode == 0
    published = (out / "predictions.parquet").read_bytes()

    with _start_score(extract, out, *hang) as process:
        # Its attempt written, not just its marker created: killed between the two, the
        # rerun's attempt would count as the first and hang again (seen once on a loaded VM).
        _wait_until(lambda: _attempts(markers / "dev-002_temp.attempts") == 1, process)
        _wait_until(lambda: _temporaries(out), process)  # the spool holds two partitions
        os.killpg(process.pid, signal.SIGKILL)  # SIGKILL: no handler, no clean-up runs
        process.wait(timeout=30)
    assert (out / LOCK_FILE).exists() and _temporaries(out), "the kill left nothing behind"
    assert (out / "predictions.parquet").read_bytes() == published  # the last good stays

    rerun = _score(extract, out, *hang)  # dev-002's second attempt does not hang
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(path.name for path in out.iterdir()) == ["predictions.parquet", "summary.json"]
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert len(predictions) == 3 * rows and not predictions.duplicated(KEYS).any()
    assert predictions.groupby("Device").size().to_dict() == {
        "dev-000": rows,
        "dev-001": rows,
        "dev-002": rows,
    }
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert notes[0].startswith("took over the output folder from pid ")
    assert notes[1].startswith("removed 1 temporary file(s) of a run that did not finish: ")


def _attempts(marker: Path) -> int:
    """The attempts a toy entry script has recorded in ``marker`` (whole lines only)."""
    try:
        return marker.read_text(encoding="utf-8").count("\n")
    except FileNotFoundError:
        return 0


def _command(extract: Path, out: Path, entry_script: str, *rest: str) -> list[str]:
    return [
        *(sys.executable, "-m", "batchscore", "--log-level", "WARNING", "score"),
        *("--input", str(extract), "--output", str(out), "--workers", "1"),
        *("--entry-script", entry_script, *rest),
    ]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "SCORING_PROGRESS": "off"}


def _score(extract: Path, out: Path, entry_script: str, *rest: str):
    return subprocess.run(
        _command(extract, out, entry_script, *rest),
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _start_score(extract: Path, out: Path, entry_script: str, *rest: str) -> subprocess.Popen:
    """``batchscore score`` as the leader of its own process group: the parent, the fork
    server and the workers all get the group's kill."""
    return subprocess.Popen(
        _command(extract, out, entry_script, *rest),
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _temporaries(folder: Path) -> list[Path]:
    """Hidden files other than the lock: spools and half-written files."""
    return [
        path for path in folder.iterdir() if path.name.startswith(".") and path.name != LOCK_FILE
    ]


def _wait_until(condition, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, "the run ended on its own"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
