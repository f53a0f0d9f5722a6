"""Output of the local runner: formats, append vs summary-only, determinism, atomic re-runs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from scoring.data.schema import PREDICTION_SCHEMA
from scoring.runner import RunSettings, run_parallel
from tests.fixtures.toy_data import write_extract, write_readings_file

SCRIPTS = Path(__file__).resolve().parents[2] / "fixtures" / "entry_scripts"
KEYS = ["TS", "Device", "Sensor"]


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    return write_extract(tmp_path_factory.mktemp("extract") / "in", devices=6, rows=7)


def _run(source: Path, out: Path, script: str = "echo.py", *args: str, **overrides):
    settings = RunSettings(
        input_path=source,
        output_dir=out,
        entry_script=SCRIPTS / script,
        program_arguments=list(args),
        show_progress=False,
        **{"workers": 2, **overrides},
    )
    return run_parallel(settings)


def test_workers_two_gives_the_same_predictions_as_one(extract, tmp_path):
    one = _run(extract, tmp_path / "one", workers=1)
    two = _run(extract, tmp_path / "two", workers=2)
    assert one.status == two.status == "succeeded"
    first = pd.read_parquet(tmp_path / "one" / "predictions.parquet")
    second = pd.read_parquet(tmp_path / "two" / "predictions.parquet")
    assert len(first) == 6 * 2 * 7
    pd.testing.assert_frame_equal(first, second)
    ordered = first.sort_values(["Device", "Sensor", "TS"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(first, ordered)  # sorted by the key columns


def test_rerun_into_the_same_folder_replaces_and_never_duplicates(extract, tmp_path):
    out = tmp_path / "out"
    _run(extract, out)
    _run(extract, out, "echo.py", "--scale", "3")
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert len(predictions) == 84
    assert not predictions.duplicated(KEYS).any()
    assert (predictions["Score"] == predictions["Value"] * 3).all()  # the second run's rows
    assert sorted(p.name for p in out.iterdir()) == ["predictions.parquet", "summary.json"]


def test_csv_output_has_a_header_and_the_same_rows(extract, tmp_path):
    summary = _run(extract, tmp_path / "csv", output_format="csv")
    assert summary.predictions_file.endswith("predictions.csv")
    text = (tmp_path / "csv" / "predictions.csv").read_text().splitlines()
    assert text[0] == '"TS","Value","Device","Sensor","Score","IsAnomaly","ModelVersion"'
    frame = pd.read_csv(tmp_path / "csv" / "predictions.csv", parse_dates=["TS"])
    _run(extract, tmp_path / "pq")
    reference = pd.read_parquet(tmp_path / "pq" / "predictions.parquet")
    assert len(frame) == len(reference) == summary.rows_written
    assert list(frame["Device"]) == list(reference["Device"])
    assert list(frame["Score"]) == list(reference["Score"])


def test_switching_format_removes_the_other_format_of_an_earlier_run(extract, tmp_path):
    out = tmp_path / "out"
    _run(extract, out, output_format="csv")
    summary = _run(extract, out, output_format="parquet")
    assert sorted(p.name for p in out.iterdir()) == ["predictions.parquet", "summary.json"]
    assert summary.notes == ["removed predictions.csv of an earlier run"]


def test_summary_only_writes_no_rows_but_counts_them(extract, tmp_path):
    out = tmp_path / "out"
    _run(extract, out)  # an earlier run's predictions must not linger beside this summary
    summary = _run(extract, out, append_rows=False)
    data = json.loads((out / "summary.json").read_text())
    assert summary.status == "succeeded"
    assert [p.name for p in out.iterdir()] == ["summary.json"]
    assert data["output"]["mode"] == "summary_only" and data["output"]["rows_written"] == 0
    assert data["items"]["returned"] == 84


def _fail(source: Path, out: Path):
    """A run that exceeds its threshold (dev-003 raises)."""
    return _run(
        source,
        out,
        "raise_for_partition.py",
        *("--fail-device", "dev-003"),
        max_retries=0,
        mini_batch_error_threshold=0,
    )


def test_a_failed_rerun_keeps_the_last_good_predictions_and_says_so(extract, tmp_path):
    out = tmp_path / "out"
    good = _run(extract, out)
    published = (out / "predictions.parquet").read_bytes()
    for _ in range(2):  # a second failure still names the run that published them
        summary = _fail(extract, out)
        assert summary.status == "failed"
        assert sorted(p.name for p in out.iterdir()) == ["predictions.parquet", "summary.json"]
        assert (out / "predictions.parquet").read_bytes() == published
        data = json.loads((out / "summary.json").read_text())
        assert data["status"] == "failed" and data["output"]["published"] is False
        assert data["output"]["predictions_file"] is None
        assert data["output"]["kept_predictions"] == {
            "file": "predictions.parquet",
            "published_by_run_started_at": good.started_at,
            "rows": 84,
        }
        assert (
            "the run failed: nothing was published; predictions.parquet of the run started at "
            f"{good.started_at} is left in place"
        ) in data["notes"]


def test_a_failed_first_run_leaves_only_its_summary(extract, tmp_path):
    out = tmp_path / "out"
    summary = _fail(extract, out)
    assert [p.name for p in out.iterdir()] == ["summary.json"]
    data = json.loads((out / "summary.json").read_text())
    assert data["output"]["kept_predictions"] is None and summary.status == "failed"
    assert "the run failed: no predictions file was published" in data["notes"]


def test_summary_records_settings_timings_and_times(extract, tmp_path):
    summary = _run(extract, tmp_path / "out", timeout_seconds=30, max_retries=1)
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert data["settings"] == {"mini_batch_size": "10", "timeout_seconds": 30, "max_retries": 1}
    assert data["workers"]["count"] == 2
    assert set(data["timings_seconds"]) == {
        "enumerate",
        "init",
        "read",
        "run",
        "write",
        "scoring_wall",
        "total",
    }
    assert data["timings_seconds"]["total"] >= data["timings_seconds"]["scoring_wall"] > 0
    assert data["started_at"] <= data["finished_at"]
    assert data["entry_script"].endswith("echo.py")
    assert summary.to_dict()["mini_batches"]["total"] == 12


def test_one_readings_file_is_scored_per_pair(tmp_path):
    source = write_readings_file(tmp_path / "r.csv", devices=3, sensors=("temp", "vib"), rows=4)
    summary = _run(source, tmp_path / "out")
    assert summary.status == "succeeded" and len(summary.records) == 6
    predictions = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert len(predictions) == 24
    assert "Site" in predictions.columns  # extra columns are kept
    assert pd.api.types.is_datetime64_any_dtype(predictions["TS"])


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_outputs_get_the_umasks_permissions_like_every_other_file(extract, tmp_path, output_format):
    previous = os.umask(0o027)
    try:
        out = tmp_path / "out"
        summary = _run(extract, out, output_format=output_format)
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in out.iterdir()}
    assert modes == {Path(summary.predictions_file).name: 0o640, "summary.json": 0o640}


@pytest.mark.parametrize("workers", [1, 2])
def test_contract_columns_take_the_contracts_types_whatever_arrives_first(
    extract, tmp_path, workers
):
    # dev-000 comes first and answers Score as text: it fails alone, naming the column
    summary = _run(
        extract,
        tmp_path / "out",
        "contract_rows.py",
        *("--text-score-device", "dev-000"),
        workers=workers,
    )
    assert summary.status == "incomplete"
    table = pq.read_table(tmp_path / "out" / "predictions.parquet")
    assert table.schema.equals(PREDICTION_SCHEMA)
    assert table.num_rows == 5 * 2 * 7 and "dev-000" not in table.column("Device").to_pylist()
    failed = {record.label: record for record in summary.failed_records}
    assert set(failed) == {"Device=dev-000/Sensor=temp", "Device=dev-000/Sensor=vib"}
    reason = failed["Device=dev-000/Sensor=temp"].reasons[-1]
    assert reason.startswith(
        "returned column Score as large_string, which does not convert to double, its type in "
        "the prediction contract: Failed to parse string: 'n/a'"
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_contract_columns_are_declared_even_beside_a_scripts_own_columns(
    extract, tmp_path, workers
):
    """Score arriving as text first (dev-000) no longer makes the column text: with a column
    of the script's own, the contract's columns still take the contract's types."""
    summary = _run(
        extract,
        tmp_path / "out",
        "contract_rows.py",
        *("--text-score-device", "dev-000", "--extra-column"),
        workers=workers,
    )
    assert summary.status == "incomplete"  # dev-000's rows failed alone, named
    table = pq.read_table(tmp_path / "out" / "predictions.parquet")
    assert str(table.schema.field("Score").type) == "double"
    assert table.column_names[-1] == "Note" and table.num_rows == 5 * 2 * 7
    (reason,) = {record.reasons[-1] for record in summary.failed_records}
    assert reason.startswith("returned column Score as large_string, which does not convert")
