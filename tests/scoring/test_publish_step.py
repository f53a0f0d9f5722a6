"""The publish step: append_row text into one Parquet file per window, replacing re-runs."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from scoring.data.schema import PREDICTION_COLUMNS
from scoring.errors import UsageError
from scoring.steps import publish

ROWS = [
    # as pandas to_csv(sep=" ", header=False) writes them: timestamps quoted (they hold a space)
    '"2025-03-01 09:55:00" dev-001 temperature 21.5 0.42 0 v3',
    '"2025-03-01 10:00:00" dev-001 temperature 35.0 -1.7 1 v3',
    '"2025-03-01 10:00:00" "dev 002" humidity 40.0 0.10 0 v1',
]


def _write(folder, name, lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_window_folder_is_utc_basic_iso():
    assert publish.window_folder("2025-03-01T10:00:00Z") == "window=20250301T100000Z"
    assert publish.window_folder("2025-03-01T11:00:00+01:00") == "window=20250301T100000Z"
    assert publish.window_folder("2025-03-01 10:00") == "window=20250301T100000Z"
    with pytest.raises(UsageError, match="--trigger-time"):
        publish.window_folder("yesterday-ish")


def test_rows_become_typed_parquet_with_header(tmp_path):
    _write(tmp_path / "scored", "parallel_run_step.txt", ROWS)
    summary = publish.publish(tmp_path / "scored", "2025-03-01T10:00:00Z", tmp_path / "out")
    frame = pd.read_parquet(tmp_path / "out" / "window=20250301T100000Z" / "predictions.parquet")
    assert list(frame.columns) == list(PREDICTION_COLUMNS)
    assert len(frame) == 3 and summary.rows_written == 3
    assert frame["TS"].dtype.kind == "M"
    assert set(frame["Device"]) == {"dev-001", "dev 002"}
    anomaly = frame[frame["IsAnomaly"] == 1].iloc[0]
    assert anomaly["Score"] == pytest.approx(-1.7) and anomaly["ModelVersion"] == "v3"


def test_at_least_once_duplicates_and_headers_are_dropped(tmp_path):
    header = " ".join(PREDICTION_COLUMNS)
    _write(tmp_path / "scored", "parallel_run_step.txt", [header, *ROWS, ROWS[1], "", header])
    summary = publish.publish(tmp_path / "scored", "2025-03-01T10:00:00Z", tmp_path / "out")
    assert summary.duplicates_dropped == 1
    assert summary.rows_written == 3


def test_unquoted_timestamps_are_rejoined(tmp_path):
    _write(tmp_path / "scored", "out.txt", ["2025-03-01 10:00:00 dev-9 power 1.0 0.5 0 v1"])
    summary = publish.publish(tmp_path / "scored", "2025-03-01T10:00:00Z", tmp_path / "out")
    assert summary.rows_written == 1 and summary.malformed == 0


def test_malformed_lines_are_logged_with_place_and_the_rest_kept(tmp_path, caplog):
    lines = [ROWS[0], "only three fields", ROWS[2], '"not a time" dev-1 s 1.0 0.1 0 v1']
    _write(tmp_path / "scored", "parallel_run_step.txt", lines)
    with caplog.at_level(logging.WARNING, logger="scoring.steps.publish"):
        summary = publish.publish(tmp_path / "scored", "2025-03-01T10:00:00Z", tmp_path / "out")
    assert summary.malformed == 2 and summary.rows_written == 2
    assert "parallel_run_step.txt line 2" in caplog.text


def test_rerun_of_a_window_replaces_its_file(tmp_path):
    _write(tmp_path / "first", "parallel_run_step.txt", ROWS)
    _write(tmp_path / "second", "parallel_run_step.txt", ROWS[:1])
    out = tmp_path / "out"
    publish.publish(tmp_path / "first", "2025-03-01T10:00:00Z", out)
    publish.publish(tmp_path / "second", "2025-03-01T10:00:00Z", out)
    window = out / "window=20250301T100000Z"
    assert sorted(p.name for p in window.iterdir()) == ["predictions.parquet", "summary.json"]
    assert len(pd.read_parquet(window / "predictions.parquet")) == 1
    assert json.loads((window / "summary.json").read_text())["rows_written"] == 1


def test_a_run_with_no_rows_still_replaces_the_window(tmp_path):
    (tmp_path / "empty").mkdir()
    summary = publish.publish(tmp_path / "empty", "2025-03-01T10:00:00Z", tmp_path / "out")
    frame = pd.read_parquet(tmp_path / "out" / "window=20250301T100000Z" / "predictions.parquet")
    assert summary.rows_written == 0 and frame.empty
    assert list(frame.columns) == list(PREDICTION_COLUMNS)


def test_main_reports_bad_usage_without_traceback(tmp_path, capsys):
    assert (
        publish.main(["--scored", str(tmp_path / "nope"), "--trigger-time", "x", "--out", "o"]) == 2
    )
    assert "--scored" in capsys.readouterr().err
    (tmp_path / "s").mkdir()
    code = publish.main(["--scored", str(tmp_path / "s"), "--trigger-time", "bad", "--out", "o"])
    assert code == 2
    assert "--trigger-time" in capsys.readouterr().err


def test_publish_runs_without_azure_ml_sdk_as_in_the_image():
    """The image has no azure-ai-ml: the publish step must not import it (nor Pulumi)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, scoring.steps.publish; "
        "bad = sorted(m for m in sys.modules if m.startswith(('azure', 'pulumi'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
