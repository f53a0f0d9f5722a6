"""Unit tests of the runner's parts that need no worker: settings, inputs, returns, spool."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring.runner.contract import (
    InvalidSettingsError,
    MiniBatchSize,
    RunSettings,
    check_entry_script,
    parse_mini_batch_size,
)
from scoring.runner.inputs import plan_input
from scoring.runner.output import OrderedRowSpool, SchemaMismatchError
from scoring.runner.returned_items import (
    ReturnValueError,
    _already_sorted,
    count_items,
    to_table,
)
from scoring.runner.workers import build_mini_batch as read_partition
from scoring.runner.workers import describe_exception, wants_context
from tests.fixtures.models import default_pipeline
from tests.fixtures.toy_data import write_extract, write_files, write_readings_file

SCRIPTS = Path(__file__).resolve().parents[2] / "fixtures" / "entry_scripts"


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", MiniBatchSize(files=10)),
        (3, MiniBatchSize(files=3)),
        ("10kb", MiniBatchSize(bytes=10 * 1024)),
        ("1MB", MiniBatchSize(bytes=1024**2)),
        (" 2 gb ", MiniBatchSize(bytes=2 * 1024**3)),
        ("512b", MiniBatchSize(bytes=512)),
    ],
)
def test_mini_batch_size_accepts_counts_and_azure_size_strings(text, expected):
    assert parse_mini_batch_size(text) == expected


@pytest.mark.parametrize("text", ["0", "-3", "ten", "10tb", "1.5mb", ""])
def test_bad_mini_batch_size_names_the_flag(text):
    with pytest.raises(InvalidSettingsError, match="--mini-batch-size"):
        parse_mini_batch_size(text)


def test_settings_validation_names_the_bad_flag(tmp_path):
    write_files(tmp_path / "in", ["a.txt"])
    base = dict(
        input_path=tmp_path / "in", output_dir=tmp_path / "out", entry_script=SCRIPTS / "echo.py"
    )
    cases = {
        "--workers": {"workers": 0},
        "--max-retries": {"max_retries": -1},
        "--timeout": {"timeout_seconds": 0},
        "--error-threshold": {"error_threshold": -2},
        "--mini-batch-error-threshold": {"mini_batch_error_threshold": -5},
        "--output-format": {"output_format": "xlsx"},
        "--input": {"input_path": tmp_path / "missing"},
    }
    for flag, override in cases.items():
        with pytest.raises(InvalidSettingsError, match=flag):
            RunSettings(**{**base, **override}).validate()
    assert RunSettings(**base).validate() == MiniBatchSize(files=10)


def test_entry_script_checks_are_static_and_name_the_script(tmp_path):
    with pytest.raises(InvalidSettingsError, match="no such file"):
        check_entry_script(tmp_path / "absent.py")
    with pytest.raises(InvalidSettingsError, match=r"no_run\.py: defines no run"):
        check_entry_script(SCRIPTS / "no_run.py")
    broken = tmp_path / "broken.py"
    broken.write_text("def run(batch):\n    return [\n")
    with pytest.raises(InvalidSettingsError, match=r"broken\.py: syntax error at line"):
        check_entry_script(broken)
    imported = tmp_path / "imported.py"
    imported.write_text("from somewhere import run\n")
    check_entry_script(imported)  # a run bound by an import counts
    check_entry_script(SCRIPTS / "echo.py")


def test_run_signature_decides_whether_the_context_is_passed():
    def one(mini_batch):
        return mini_batch

    def two(mini_batch, mini_batch_context):
        return mini_batch

    def star(*args):
        return args

    assert not wants_context(one)
    assert wants_context(two)
    assert wants_context(star)


def test_exception_description_names_type_message_and_place():
    try:
        raise ValueError("bad model file")
    except ValueError as exc:
        text = describe_exception(exc)
    assert text.startswith("ValueError: bad model file (at test_contract.py:")
    assert "in test_exception_description_names_type_message_and_place" in text


def _train_store(root: Path, pairs: list[tuple[str, str]]) -> None:
    import numpy as np

    from scoring.models.store import ModelStore

    store = ModelStore(root)
    X = np.random.default_rng(0).normal(0.0, 1.0, size=(100, 1))
    for device, sensor in pairs:
        pipeline = default_pipeline(nu=0.05)
        store.save(device, sensor, pipeline.fit(X), training_rows=100, params={},
                   write_manifest=False)  # fmt: skip
    store.write_manifest()


# --- inputs -----------------------------------------------------------------------------


def test_extract_folder_gives_one_mini_batch_per_partition_in_key_order(tmp_path):
    folder = write_extract(tmp_path / "in", devices=2, sensors=("vib", "temp"), rows=3)
    plan = plan_input(folder, MiniBatchSize(files=1))
    assert plan.kind == "mltable" and plan.tabular
    assert [t.keys for t in plan.tasks] == [
        {"Device": "dev-000", "Sensor": "temp"},
        {"Device": "dev-000", "Sensor": "vib"},
        {"Device": "dev-001", "Sensor": "temp"},
        {"Device": "dev-001", "Sensor": "vib"},
    ]
    assert [t.index for t in plan.tasks] == [0, 1, 2, 3]
    frame = read_partition(plan.tasks[1])
    assert list(frame.columns) == ["TS", "Value", "Device", "Sensor"], "as mltable returns it"
    assert set(frame["Device"]) == {"dev-000"} and set(frame["Sensor"]) == {"vib"}
    assert len(frame) == 3


def test_worker_side_reader_gives_the_extract_modules_frame(tmp_path):
    from scoring.data.extract_folder import list_partitions
    from scoring.data.extract_folder import read_partition as extract_read_partition

    folder = write_extract(tmp_path / "in", devices=2, sensors=("temp",), rows=4)
    extra = folder / "Device=dev-001" / "Sensor=temp" / "part-1.parquet"
    pd.DataFrame(
        {"TS": pd.to_datetime(["2024-02-01"]), "Value": [9.0], "Device": ["ignored"]}
    ).to_parquet(extra)  # a second file, with a key column that the path overrides
    tasks = plan_input(folder, MiniBatchSize(files=1)).tasks
    partitions = list_partitions(folder)
    assert [t.keys for t in tasks] == [p.keys for p in partitions]
    for task, partition in zip(tasks, partitions, strict=True):
        pd.testing.assert_frame_equal(
            read_partition(task), extract_read_partition(partition.files, partition.keys)
        )
    assert len(read_partition(tasks[1])) == 5


def test_percent_encoded_partition_values_reach_run_raw_as_from_the_driver(tmp_path):
    folder = tmp_path / "in"
    partition = folder / "Device=plant%2F7" / "Sensor=temp%20C"
    partition.mkdir(parents=True)
    (folder / "MLTable").write_text("paths: []\n")
    pd.DataFrame({"ts": pd.to_datetime(["2024-01-01"]), "VALUE": [1.5]}).to_parquet(
        partition / "part-0.parquet"
    )
    (task,) = plan_input(folder, MiniBatchSize(files=1)).tasks
    assert task.keys == {"Device": "plant%2F7", "Sensor": "temp%20C"}
    frame = read_partition(task)
    assert frame.loc[0, "Device"] == "plant%2F7", "mltable keeps the encoding: run() decodes"
    assert list(frame.columns) == ["ts", "VALUE", "Device", "Sensor"]  # the file's own names


def test_a_foreign_folder_value_fails_its_mini_batch_alone(tmp_path):
    """`Device=%FF` is no value this product writes: its mini-batch fails with the reason, the
    other partitions are scored (the listing itself never decodes)."""
    from scoring.runner import RunSettings, run_parallel
    from scoring.steps import ENTRY_SCRIPT

    folder = write_extract(tmp_path / "in", devices=1, sensors=("temp",), rows=3)
    foreign = folder / "Device=%FF" / "Sensor=temp"
    foreign.mkdir(parents=True)
    pd.DataFrame({"TS": pd.to_datetime(["2024-01-01"]), "Value": [1.0]}).to_parquet(
        foreign / "part-0.parquet"
    )
    store = tmp_path / "models"
    _train_store(store, [("dev-000", "temp")])
    summary = run_parallel(
        RunSettings(
            input_path=folder,
            output_dir=tmp_path / "out",
            entry_script=ENTRY_SCRIPT,
            program_arguments=["--models", str(store)],
            workers=1,
            max_retries=0,
            show_progress=False,
        )
    )
    (failed,) = summary.failed_records
    assert failed.label == "Device=%FF/Sensor=temp"
    assert "'%FF' is not a percent-encoded value" in failed.reasons[-1]
    assert summary.items_returned == 3


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_one_readings_file_is_grouped_by_device_and_sensor(tmp_path, suffix):
    path = write_readings_file(tmp_path / f"r{suffix}", devices=2, sensors=("temp", "vib"), rows=4)
    plan = plan_input(path, MiniBatchSize(files=1))
    assert plan.kind == "table-file"
    assert [t.label for t in plan.tasks] == [
        "Device=dev-000/Sensor=temp",
        "Device=dev-000/Sensor=vib",
        "Device=dev-001/Sensor=temp",
        "Device=dev-001/Sensor=vib",
    ]
    frame = plan.tasks[0].frame
    assert list(frame.columns) == ["TS", "Device", "Sensor", "Value", "Site"]
    assert pd.api.types.is_datetime64_any_dtype(frame["TS"]) and len(frame) == 4


def test_readings_file_without_required_columns_is_refused_with_names(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"TS": ["2024-01-01"], "Device": ["d"], "Reading": [1.0]}).to_csv(path)
    with pytest.raises(InvalidSettingsError, match=r"r\.csv: missing column\(s\) Sensor, Value"):
        plan_input(path, MiniBatchSize(files=1))


def test_rows_without_keys_are_counted_not_silently_lost(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame(
        {
            "TS": ["2024-01-01 00:00", "2024-01-01 00:01", "2024-01-01 00:02"],
            "Device": ["d1", None, "d1"],
            "Sensor": ["s", "s", "s"],
            "Value": [1.0, 2.0, 3.0],
        }
    ).to_csv(path, index=False)
    plan = plan_input(path, MiniBatchSize(files=1))
    assert plan.unassigned_items == 1
    assert plan.tasks[0].items == 2
    assert "1 row(s)" in plan.notes[0] and "r.csv" in plan.notes[0]


def test_file_folder_batches_by_count_and_by_bytes(tmp_path):
    folder = write_files(tmp_path / "in", [f"f{i}.txt" for i in range(7)], size=100)
    by_count = plan_input(folder, MiniBatchSize(files=3))
    assert by_count.kind == "files"
    assert [len(t.files) for t in by_count.tasks] == [3, 3, 1]
    assert Path(by_count.tasks[0].files[0]).name == "f0.txt"
    by_bytes = plan_input(folder, parse_mini_batch_size("250b"))
    assert [len(t.files) for t in by_bytes.tasks] == [2, 2, 2, 1]
    huge = write_files(tmp_path / "big", ["big.bin", "small.bin"], size=1000)
    assert [len(t.files) for t in plan_input(huge, parse_mini_batch_size("1b")).tasks] == [1, 1]


def test_empty_file_folder_is_bad_usage(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidSettingsError, match="holds no files"):
        plan_input(tmp_path / "empty", MiniBatchSize(files=1))


# --- returns ----------------------------------------------------------------------------


def test_returned_items_are_counted_like_azure():
    assert count_items([1, 2, 3]) == 3
    assert count_items(pd.DataFrame({"a": [1, 2]})) == 2
    with pytest.raises(ReturnValueError, match="returned NoneType"):
        count_items(None)


def test_returned_rows_become_columns():
    dicts = to_table([{"file": "a", "n": 1}, {"file": "b", "extra": True}], sort_keys=False)
    assert dicts.column_names == ["file", "n", "extra"]
    assert dicts.column("n").to_pylist() == [1, None]
    tuples = to_table([("a", 1), ("b", 2, 3)], sort_keys=False)
    assert tuples.column_names == ["col0", "col1", "col2"]
    scalars = to_table(["x", "y"], sort_keys=False)
    assert scalars.column("result").to_pylist() == ["x", "y"]
    mixed = to_table([{"v": 1}, {"v": "two"}], sort_keys=False)
    assert mixed.column("v").to_pylist() == ["1", "two"]


def test_tabular_rows_are_sorted_by_device_sensor_ts():
    frame = pd.DataFrame(
        {
            "TS": pd.to_datetime(["2024-01-01 00:02", "2024-01-01 00:01", "2024-01-01 00:00"]),
            "Device": ["b", "a", "a"],
            "Sensor": ["s", "s", "s"],
            "Score": [3.0, 2.0, 1.0],
        }
    )
    table = to_table(frame, sort_keys=True)
    assert table.column("Score").to_pylist() == [1.0, 2.0, 3.0]
    assert to_table(frame, sort_keys=False).column("Score").to_pylist() == [3.0, 2.0, 1.0]


# --- spool ------------------------------------------------------------------------------


def _batch(index: int, rows: int = 2) -> pa.Table:
    return pa.table({"batch": [index] * rows, "row": list(range(rows))})


@pytest.mark.parametrize("buffer_bytes", [256 * 1024 * 1024, 1])
def test_spool_publishes_rows_in_mini_batch_order_whatever_the_arrival(tmp_path, buffer_bytes):
    spool = OrderedRowSpool(tmp_path, buffer_bytes=buffer_bytes)
    for index in [3, 0, 5, 1, 4, 2]:
        spool.add(index, None if index == 4 else _batch(index))
    assert spool.spilled == (buffer_bytes == 1)
    rows = spool.publish(tmp_path / "predictions.parquet", "parquet")
    assert rows == 10
    table = pq.read_table(tmp_path / "predictions.parquet")
    assert table.column("batch").to_pylist() == [0, 0, 1, 1, 2, 2, 3, 3, 5, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.parquet"]


def test_spool_writes_csv_with_a_header(tmp_path):
    spool = OrderedRowSpool(tmp_path)
    spool.add(1, _batch(1, rows=1))
    spool.add(0, _batch(0, rows=1))
    spool.publish(tmp_path / "predictions.csv", "csv")
    lines = (tmp_path / "predictions.csv").read_text().splitlines()
    assert lines == ['"batch","row"', "0,0", "1,0"]


def test_spool_refuses_rows_whose_columns_do_not_fit(tmp_path):
    spool = OrderedRowSpool(tmp_path)
    spool.add(0, _batch(0))
    reordered = pa.table({"row": [0], "batch": [1]})
    spool.add(1, reordered)  # same columns in another order: conformed
    with pytest.raises(SchemaMismatchError, match=r"returned columns \['other'\]"):
        spool.add(2, pa.table({"other": [1]}))
    with pytest.raises(SchemaMismatchError, match="column batch as string, which does not conv"):
        spool.add(2, pa.table({"batch": ["x"], "row": [1]}))
    spool.add(2, None)
    assert spool.publish(tmp_path / "p.parquet", "parquet") == 3


def test_spool_discard_leaves_nothing(tmp_path):
    spool = OrderedRowSpool(tmp_path)
    spool.add(0, _batch(0))
    spool.discard()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("rows", "in_order"),
    [
        ([("a", "t", 1), ("a", "t", 2), ("a", "v", 0), ("b", "a", 5)], True),  # a shard's pairs
        ([("a", "t", 1), ("a", "t", 1), ("b", "t", 0)], True),  # ties are in order
        ([("a", "v", 1), ("a", "t", 2)], False),  # the second key goes back
        ([("a", "t", 2), ("a", "t", 1)], False),  # TS goes back within a pair
        ([("b", "a", 1), ("a", "z", 9)], False),  # the first key goes back
        ([("a", None, 1), ("a", "t", 2)], False),  # a null: the sort decides
    ],
)
def test_rows_are_sorted_by_device_sensor_ts_only_when_they_are_not_already(rows, in_order):
    frame = pd.DataFrame(rows, columns=["Device", "Sensor", "TS"])
    table = to_table(frame, sort_keys=True)
    expected = sorted(rows, key=lambda row: tuple("\uffff" if v is None else v for v in row))
    assert [tuple(row.values()) for row in table.to_pylist()] == expected
    assert _already_sorted(pa.Table.from_pandas(frame), ["Device", "Sensor", "TS"]) is in_order
