"""``extract``: one window as hive-partitioned Parquet + MLTable, read back per partition."""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from batchscore.aggregate import aggregate_readings
from batchscore.cli import main
from scoring.data import db
from scoring.data.extract_folder import (
    ExtractFolderError,
    is_empty_window,
    iter_partitions,
    list_partitions,
    read_index,
    read_partition,
    read_summary,
)
from scoring.data.schema import COUNT, DEVICE, SENSOR, TS, VALUE, encode_partition_value

DEVICES = ["001", "dev.2", "Zürich/7"]  # leading zeros, a dot, a slash and a non-ASCII letter
SENSORS = ["temperature", "vibration"]
START = pd.Timestamp("2024-01-01 00:00:00")


def _windows(minutes: int = 120, devices=DEVICES, value: float = 1.0) -> pd.DataFrame:
    rows = [
        (START + pd.Timedelta(minutes=m), device, sensor, value + m)
        for device in devices
        for sensor in SENSORS
        for m in range(minutes)
    ]
    raw = pd.DataFrame(rows, columns=[TS, DEVICE, SENSOR, VALUE])
    return aggregate_readings(raw, 5)


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'sensors.db'}"
    engine = db.open_database(url, create=True)
    db.ensure_table(engine)
    db.replace_windows(engine, _windows())
    engine.dispose()
    return url


def _extract(
    url: str, out, end: str = "2024-01-01 01:00:00", lookback: int = 30, *extra: str
) -> int:
    """The pair layout unless ``extra`` says otherwise (shard tests pass their own)."""
    layout = [] if "--partitioning" in extra else ["--partitioning", "pair"]
    return main(
        ["extract", "--db", url, "--end", end, "--lookback-minutes", str(lookback),
         "--output", str(out), *layout, *extra]
    )  # fmt: skip


def test_window_is_start_exclusive_end_inclusive(url, tmp_path):
    out = tmp_path / "window"
    assert _extract(url, out) == 0
    for keys, frame in iter_partitions(out):
        assert frame[TS].min() == pd.Timestamp("2024-01-01 00:35:00"), keys  # 00:30 excluded
        assert frame[TS].max() == pd.Timestamp("2024-01-01 01:00:00"), keys  # 01:00 included
        assert len(frame) == 6 and frame[COUNT].eq(5).all()
    summary = read_summary(out)
    assert summary["window_start"] == "2024-01-01T00:30:00"
    assert summary["window_end"] == "2024-01-01T01:00:00"
    assert (summary["rows"], summary["partitions"]) == (6 * 6, 6)


def test_layout_and_mltable_are_what_azure_ml_expects(url, tmp_path):
    """The MLTable's steps as Microsoft's parallel sample writes them (azureml-examples
    cli/jobs/parallel/1a_oj_sales_prediction, src/partition_data): the path column is read so
    that the partition format can extract the keys from it, then dropped. How the real mltable
    package reads this folder is tested in the image's own environment
    (tests/docker/test_image_requirements.py)."""
    out = tmp_path / "window"
    assert _extract(url, out) == 0
    mltable = yaml.safe_load((out / "MLTable").read_text())
    assert mltable["type"] == "mltable"
    pattern = mltable["paths"][0]["pattern"]
    steps = mltable["transformations"]
    assert steps[0] == {"read_parquet": {"include_path_column": True}}
    assert steps[1] == {
        "extract_columns_from_partition_format": {
            "partition_format": "/Device={Device}/Sensor={Sensor}/part-0.parquet"
        }
    }
    assert steps[2] == {"drop_columns": ["Path"]}
    files = sorted(out.glob(pattern.removeprefix("./")))
    assert len(files) == 6, "the MLTable pattern finds every partition file"
    for path in files:
        columns = pq.ParquetFile(path).schema_arrow.names
        assert DEVICE not in columns and SENSOR not in columns, f"{path} duplicates keys"
        assert columns[:2] == [TS, VALUE]
    decoded = {(p.device, p.sensor) for p in list_partitions(out)}
    assert decoded == {(d, s) for d in DEVICES for s in SENSORS}


@pytest.mark.filterwarnings("ignore")  # azure-ai-ml's own marshmallow deprecation noise
def test_mltable_passes_azure_ai_ml_offline_loading(url, tmp_path):
    from azure.ai.ml.entities._data.mltable_metadata import MLTableMetadata

    out = tmp_path / "window"
    assert _extract(url, out) == 0
    metadata = MLTableMetadata.load(out / "MLTable")
    assert metadata.paths[0].type == "pattern"
    assert "extract_columns_from_partition_format" in metadata.transformations[1]


def test_iter_partitions_hands_raw_folder_values_as_the_driver_does(url, tmp_path):
    """Key columns after the file's columns, holding the folder values still encoded, as
    mltable returns them ("001" stays "001")."""
    out = tmp_path / "window"
    assert _extract(url, out) == 0
    pairs = [(keys, frame) for keys, frame in iter_partitions(out)]
    keys = [(k[DEVICE], k[SENSOR]) for k, _ in pairs]
    encoded = [
        (encode_partition_value(d), encode_partition_value(s)) for d in DEVICES for s in SENSORS
    ]
    assert keys == sorted(encoded)
    for key, frame in pairs:
        assert list(frame.columns) == [TS, VALUE, "MinValue", "MaxValue", COUNT, DEVICE, SENSOR]
        assert frame[DEVICE].eq(key[DEVICE]).all() and frame[SENSOR].eq(key[SENSOR]).all()
        assert frame[DEVICE].map(type).eq(str).all()
    assert [p.keys for p in list_partitions(out)] == [k for k, _ in pairs]
    assert ("001", "temperature") in {(p.device, p.sensor) for p in list_partitions(out)}


def test_reextracting_replaces_the_folder_as_a_whole(url, tmp_path):
    out = tmp_path / "window"
    assert _extract(url, out) == 0
    engine = db.open_database(url)
    db.replace_windows(engine, _windows(devices=["dev-9"], value=100.0))
    engine.dispose()
    (out / "stray.txt").write_text("left over from before")
    assert _extract(url, out, end="2024-01-01 00:10:00", lookback=10) == 0
    assert not (out / "stray.txt").exists()
    assert read_summary(out)["window_end"] == "2024-01-01T00:10:00"
    frames = dict(((k[DEVICE], k[SENSOR]), f) for k, f in iter_partitions(out))
    assert len(frames) == 8
    assert frames[("dev-9", "vibration")][VALUE].tolist() == [103.0, 108.0]  # minutes 1-5 and 6-10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sensors.db", "window"], "no temp dirs"


def test_an_empty_window_still_writes_a_readable_mltable_and_summary(url, tmp_path, caplog):
    """mltable raises on an MLTable whose pattern matches no file, and gives no partition for
    zero rows: one partition of one marker row, outside the index."""
    out = tmp_path / "empty"
    assert _extract(url, out, end="2030-01-01T00:00:00Z") == 0
    assert (out / "MLTable").is_file()
    assert read_summary(out)["partitions"] == 0 and read_summary(out)["rows"] == 0
    (only,) = list(iter_partitions(out))
    assert only[0] == {DEVICE: "_empty-window", SENSOR: "_empty-window"} and len(only[1]) == 1
    assert is_empty_window(only[1], only[0]) and read_index(out) == {}
    assert any("no readings" in r.getMessage() for r in caplog.records)


def test_each_partitions_rows_are_recorded(url, tmp_path):
    out = tmp_path / "window"
    assert _extract(url, out) == 0
    recorded = read_index(out)
    assert recorded == {p.relative_folder: 6 for p in list_partitions(out)}


def test_a_name_too_long_for_a_folder_fails_alone_and_is_reported(url, tmp_path, caplog):
    engine = db.open_database(url)
    db.replace_windows(engine, _windows(devices=["é" * 100], value=3.0))
    engine.dispose()
    out = tmp_path / "window"
    assert _extract(url, out) == 0
    summary = read_summary(out)
    assert summary["partitions"] == 6, "the other pairs are all there"
    (skipped,) = {s["device"] for s in summary["skipped_pairs"]}
    assert skipped == "é" * 100 and len(summary["skipped_pairs"]) == 2
    assert "too long for a partition folder" in summary["skipped_pairs"][0]["reason"]
    assert "not extracted" in caplog.text


def test_naive_end_in_the_schedules_time_zone_and_unsubstituted_macros(url, tmp_path, capsys):
    args = ["--end", "2024-01-01T02:00:00", "--time-zone", "W. Europe Standard Time"]
    assert main(["extract", "--db", url, "--output", str(tmp_path / "a"), *args]) == 0
    assert read_summary(tmp_path / "a")["window_end"] == "2024-01-01T01:00:00"
    bad = ["--end", "${{creation_context.trigger_time}}"]
    assert main(["extract", "--db", url, "--output", str(tmp_path / "b"), *bad]) == 2
    assert "was never filled in" in capsys.readouterr().err
    zone = ["--end", "2024-01-01", "--time-zone", "Mars/Olympus"]
    assert main(["extract", "--db", url, "--output", str(tmp_path / "c"), *zone]) == 2
    assert "--time-zone 'Mars/Olympus'" in capsys.readouterr().err


def test_an_output_that_cannot_be_written_is_one_line_exit_2(url, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["extract", "--db", url, "--end", "latest", "--output", str(blocker / "x")]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and len(err.strip().splitlines()) == 1


def test_end_latest_and_aware_timestamps(url, tmp_path):
    assert _extract(url, tmp_path / "a", end="latest", lookback=5) == 0
    assert read_summary(tmp_path / "a")["window_end"] == "2024-01-01T02:00:00"
    assert _extract(url, tmp_path / "b", end="2024-01-01T03:00:00+02:00", lookback=5) == 0
    assert read_summary(tmp_path / "b")["window_end"] == "2024-01-01T01:00:00"


def test_streaming_query_yields_each_pair_once_across_chunks(url):
    engine = db.open_database(url)
    got = list(
        db.iter_pair_readings(
            engine, START.to_pydatetime(), pd.Timestamp("2024-01-03").to_pydatetime(), chunk_rows=7
        )
    )
    engine.dispose()
    assert [(d, s) for d, s, _ in got] == sorted((d, s) for d in DEVICES for s in SENSORS)
    assert all(len(frame) == 24 and frame[TS].is_monotonic_increasing for _, _, frame in got)


def test_a_corrupt_partition_is_named_and_the_others_still_read(url, tmp_path):
    out = tmp_path / "window"
    assert _extract(url, out) == 0
    partitions = list_partitions(out)
    partitions[0].files[0].write_bytes(b"not parquet")
    with pytest.raises(ExtractFolderError, match=re.escape(str(partitions[0].files[0]))):
        read_partition(partitions[0].files, partitions[0].keys)
    assert all(len(read_partition(p.files, p.keys)) == 6 for p in partitions[1:])


def test_reading_something_that_is_not_an_extract(tmp_path):
    with pytest.raises(ExtractFolderError, match="no such extract folder"):
        list(iter_partitions(tmp_path / "nope"))
    with pytest.raises(ExtractFolderError, match="no MLTable"):
        list(iter_partitions(tmp_path))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--end", "not-a-time"], "--end 'not-a-time'"),
        (["--end", "2024-01-01", "--lookback-minutes", "0"], "--lookback-minutes"),
        (["--end", "2024-01-01", "--db", "sqlite:///{tmp}/missing.db"], "no such database file"),
        (["--end", "2024-01-01", "--db", "sqlite:///{tmp}/plain.db"], "table SensorReadings"),
        (["--end", "2024-01-01", "--output", "{tmp}/precious"], "refusing to replace it"),
    ],
)
def test_bad_usage_exits_2_with_one_line(url, tmp_path, capsys, args, expected):
    import sqlite3

    sqlite3.connect(tmp_path / "plain.db").close()
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("do not delete")
    argv = ["extract", "--db", url, "--output", str(tmp_path / "out"), "--partitioning", "pair"]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "precious" / "thesis.tex").exists()


def test_summary_is_json_with_counts(url, tmp_path):
    out = tmp_path / "window"
    assert _extract(url, out) == 0
    summary = json.loads((out / "_extract.json").read_text())
    assert summary["partition_keys"] == [DEVICE, SENSOR]
    assert summary["lookback_minutes"] == 30


def test_a_target_that_cannot_be_renamed_is_filled_in_place(url, tmp_path, monkeypatch):
    """Azure ML mounts a job's output folder: it cannot be renamed, only written into."""
    import errno

    from scoring.steps import extract

    out = tmp_path / "mounted"
    out.mkdir()

    def no_rename(src, dst):
        raise OSError(errno.EBUSY, "Device or resource busy", str(src))

    monkeypatch.setattr(extract.os, "rename", no_rename)
    assert _extract(url, out) == 0
    assert read_summary(out)["partitions"] == 6
    assert len(list(iter_partitions(out))) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mounted", "sensors.db"]


def test_the_extract_folder_is_readable_by_others_like_any_new_folder(url, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        assert _extract(url, tmp_path / "window") == 0
    finally:
        os.umask(old)
    assert (tmp_path / "window").stat().st_mode & 0o777 == 0o755


# --- the shard layout -------------------------------------------------------------------


def test_shards_hold_whole_pairs_sorted_and_about_the_target_size(url, tmp_path):
    out = tmp_path / "window"
    end, lookback = "2024-01-01 02:00:00", 120
    assert _extract(url, out, end, lookback, "--partitioning", "shard", "--shard-rows", "50") == 0
    summary = read_summary(out)
    assert summary["layout"] == "shard" and summary["partition_keys"] == ["Shard"]
    partitions = list_partitions(out)
    assert [p.keys for p in partitions] == [{"Shard": f"{i:05d}"} for i in range(len(partitions))]
    seen: dict[tuple[str, str], str] = {}
    total = 0
    for partition in partitions:
        frame = read_partition(partition.files, partition.keys)
        assert list(frame.columns) == [TS, DEVICE, SENSOR, VALUE, "MinValue", "MaxValue", COUNT,
                                       "Shard"]  # fmt: skip
        keys = list(zip(frame[DEVICE], frame[SENSOR], frame[TS], strict=True))
        assert keys == sorted(keys), "sorted by Device, Sensor, TS"
        for pair in set(zip(frame[DEVICE], frame[SENSOR], strict=True)):
            assert pair not in seen, f"{pair} is split across shards"
            seen[pair] = partition.keys["Shard"]
        assert 50 <= len(frame) < 50 + 24 or partition is partitions[-1]
        total += len(frame)
    assert set(seen) == {(d, s) for d in DEVICES for s in SENSORS}, "real names, not encoded"
    assert total == summary["rows"] == 6 * 24
    assert read_index(out) == {
        p.relative_folder: n
        for p, n in zip(
            partitions, [len(read_partition(p.files, p.keys)) for p in partitions], strict=True
        )
    }


def test_a_case_insensitive_database_never_splits_a_pair_across_shards(tmp_path):
    """SQL Server's default collation streams "dev-1" and "Dev-1" interleaved."""
    from scoring.data.extract_folder import write_partitions

    def rows(device: str) -> pd.DataFrame:
        frame = {TS: pd.date_range("2024-01-01", periods=3, freq="5min"), DEVICE: device}
        return pd.DataFrame(frame | {SENSOR: "t", VALUE: 1.0, "MinValue": 1.0, "MaxValue": 1.0,
                                     COUNT: 5})  # fmt: skip

    stream = [(d, "t", rows(d)) for d in ("dev-1", "Dev-1", "dev-1", "dev-2")]
    written = write_partitions(tmp_path, iter(stream), "shard", shard_rows=2)
    assert written.rows_by_folder == {"Shard=00000": 9, "Shard=00001": 3}


def test_an_empty_window_in_shards_is_one_marker_shard(url, tmp_path):
    out = tmp_path / "empty"
    assert _extract(url, out, "2030-01-01T00:00:00Z", 30, "--partitioning", "shard") == 0
    (only,) = list(iter_partitions(out))
    assert only[0] == {"Shard": "00000"} and len(only[1]) == 1
    assert is_empty_window(only[1], only[0]) and read_index(out) == {}
    assert read_summary(out)["rows"] == 0


def test_names_too_long_for_a_folder_fit_in_a_shard(url, tmp_path):
    engine = db.open_database(url)
    db.replace_windows(engine, _windows(devices=["é" * 100], value=3.0))
    engine.dispose()
    out = tmp_path / "window"
    assert _extract(url, out, "2024-01-01 01:00:00", 30, "--partitioning", "shard") == 0
    assert read_summary(out)["skipped_pairs"] == []
    frame = read_partition(*(lambda p: (p.files, p.keys))(list_partitions(out)[0]))
    assert ("é" * 100) in set(frame[DEVICE])


# --- a daylight-saving edge or a text value: a clear line or a status, never a traceback ---------
@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (
            "2024-10-27T02:30:00",
            "--end '2024-10-27T02:30:00' is ambiguous in Europe/Berlin: that wall-clock time "
            "happens twice (daylight saving ends), at 2024-10-27T00:30:00Z and "
            "2024-10-27T01:30:00Z; give it with an offset or in UTC",
        ),
        (
            "2024-03-31T02:30:00",
            "--end '2024-03-31T02:30:00' does not exist in Europe/Berlin: the clock skips that "
            "hour (daylight saving starts); give it with an offset or in UTC",
        ),
    ],
    ids=["ambiguous", "nonexistent"],
)
def test_a_daylight_saving_edge_is_refused_naming_the_instants(tmp_path, capsys, end, expected):
    """Refused before any database is opened (none exists here)."""
    argv = ["extract", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--end", end]
    assert main([*argv, "--time-zone", "Europe/Berlin", "--output", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == f"error: {expected}\n"
    offset = ["--end", "2024-10-27T02:30:00+01:00", "--time-zone", "Europe/Berlin"]
    url = f"sqlite:///{tmp_path / 's.db'}"
    db.ensure_table(db.open_database(url, create=True))
    assert main(["extract", "--db", url, *offset, "--output", str(tmp_path / "y")]) == 0
    assert read_summary(tmp_path / "y")["window_end"] == "2024-10-27T01:30:00"


def test_a_text_value_in_the_table_is_kept_as_missing_and_named(url, tmp_path, caplog):
    """SQLite keeps any type in any column: the row is extracted with a missing Value (the
    score step answers it invalid_value), the value named in a warning, the others intact."""
    engine = db.open_database(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO SensorReadings (TS, Device, Sensor, Value, MinValue, MaxValue, Count) "
            "VALUES ('2024-01-01 00:52:30.000000', 'odd', 'temperature', 'n/a', 1, 2, 'x')"
        )
    engine.dispose()
    with caplog.at_level("WARNING"):
        assert _extract(url, tmp_path / "out") == 0
    assert "Value: 1 value(s) that are not numbers (e.g. 'n/a') read as missing" in caplog.text
    rows = {keys["Device"]: frame for keys, frame in iter_partitions(tmp_path / "out")}
    odd = rows[encode_partition_value("odd")]
    assert len(odd) == 1 and odd[VALUE].isna().all() and odd[COUNT].isna().all()
    assert read_summary(tmp_path / "out")["rows"] == 6 * 6 + 1
