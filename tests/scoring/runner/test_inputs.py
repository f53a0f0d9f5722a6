"""File input (uri_folder): run() gets lists of paths, mini_batch_size files or bytes at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scoring.runner import RunSettings, run_parallel
from tests.fixtures.toy_data import write_files

SCRIPTS = Path(__file__).resolve().parents[2] / "fixtures" / "entry_scripts"


def _run(tmp_path: Path, script: str, *args: str, **overrides):
    settings = RunSettings(
        input_path=tmp_path / "in",
        output_dir=tmp_path / "out",
        entry_script=SCRIPTS / script,
        program_arguments=["--marker-dir", str(tmp_path), *args],
        show_progress=False,
        **{"workers": 2, **overrides},
    )
    summary = run_parallel(settings)
    return summary, json.loads((tmp_path / "out" / "summary.json").read_text())


def test_files_are_batched_by_count_and_every_file_gets_a_row(tmp_path):
    write_files(tmp_path / "in", [f"doc{i:02d}.txt" for i in range(7)], size=10)
    summary, data = _run(tmp_path, "echo.py", mini_batch_size="3")
    assert data["input_kind"] == "files"
    assert data["mini_batches"]["total"] == 3
    assert data["items"] == {"in": 7, "returned": 7, "failed": 0, "not_run": 0, "unassigned": 0}
    rows = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert list(rows.columns) == ["file", "bytes"]
    assert list(rows["file"]) == [f"doc{i:02d}.txt" for i in range(7)]  # mini-batch order
    assert summary.records[0].label == "doc00.txt (+2 more)"


def test_files_are_batched_by_size_string(tmp_path):
    write_files(tmp_path / "in", [f"f{i}.bin" for i in range(6)], size=400)
    _, data = _run(tmp_path, "echo.py", mini_batch_size="1kb")
    assert data["mini_batches"]["total"] == 3  # two 400-byte files fit in 1024 bytes


def test_a_file_that_makes_run_raise_fails_its_mini_batch_only(tmp_path):
    write_files(tmp_path / "in", ["a.txt", "b.txt", "corrupt.txt", "d.txt", "e.txt"])
    summary, data = _run(
        tmp_path, "raise_for_partition.py", "--fail-file", "corrupt", mini_batch_size="2"
    )
    assert summary.status == "incomplete"
    (failed,) = data["failed_mini_batches"]
    assert failed["label"] == "corrupt.txt (+1 more)" and failed["attempts"] == 3
    assert failed["reasons"][0].startswith("OSError: cannot parse corrupt.txt")
    assert data["items"]["failed"] == 2
    rows = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert list(rows["result"]) == ["a.txt", "b.txt", "e.txt"]


def test_a_file_error_threshold_fails_the_run(tmp_path):
    write_files(tmp_path / "in", ["a.txt", "corrupt.txt", "c.txt"])
    summary, _ = _run(
        tmp_path,
        "raise_for_partition.py",
        "--fail-file",
        "corrupt",
        mini_batch_size="1",
        max_retries=0,
        error_threshold=0,
    )
    assert summary.status == "failed"
    assert summary.failure == "error_threshold exceeded: 1 failed items > 0"


def test_short_returns_in_file_mode_count_the_missing_files(tmp_path):
    write_files(tmp_path / "in", ["keep1.txt", "skip-me.txt", "keep2.txt", "keep3.txt"])
    summary, data = _run(tmp_path, "short.py", mini_batch_size="2", max_retries=0, workers=1)
    (failed,) = data["failed_mini_batches"]
    assert failed["reasons"] == ["returned 1 of 2 items"]
    assert failed["warnings"] == ["WARNING toy.short: dropped file skip-me.txt"]
    rows = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert list(rows.columns) == ["col0", "col1"]
    assert list(rows["col0"]) == ["keep1.txt", "keep2.txt", "keep3.txt"]
    assert summary.items_failed == 1


def test_one_argument_run_gets_paths_as_strings(tmp_path):
    write_files(tmp_path / "in", ["x.txt", "y.txt"])
    summary, _ = _run(tmp_path, "echo_no_context.py", output_format="csv")
    lines = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert lines[0] == '"result"' and len(lines) == 3
    assert lines[1].strip('"').endswith("x.txt")
    assert summary.rows_written == 2
