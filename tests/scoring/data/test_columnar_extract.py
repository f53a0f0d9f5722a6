"""The columnar read path of the extract: the window in chunks of whole pairs from the driver's
cursor, cut into the same shards the per-pair writer makes."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from scoring.data import db
from scoring.data.extract_folder import (
    finish_extract,
    list_partitions,
    pair_run_starts,
    read_index,
    read_partition,
    write_partitions,
    write_shards_of_chunks,
)
from scoring.data.schema import SQL_COLUMNS


def _window(pairs: list[tuple[str, str]], rows: int = 5) -> pd.DataFrame:
    stamps = pd.date_range("2024-01-01 00:05", periods=rows, freq="5min").as_unit("us")
    frames = [
        pd.DataFrame(
            {
                "TS": stamps,
                "Device": device,
                "Sensor": sensor,
                "Value": np.arange(rows, dtype="float64") + number,
                "MinValue": 0.0,
                "MaxValue": 1.0,
                "Count": np.int64(5),
            }
        )
        for number, (device, sensor) in enumerate(pairs)
    ]
    return pd.concat(frames, ignore_index=True)


PAIRS = [(f"dev-{d:02d}", s) for d in range(7) for s in ("hum", "temp")]


def _shards(folder, written=None) -> list[pd.DataFrame]:
    if written is not None:
        finish_extract(folder, written, "shard", {"layout": "shard"})
    return [read_partition(p.files, p.keys) for p in list_partitions(folder)]


@pytest.mark.parametrize("cuts", [[], [10], [20, 40], [5, 15, 25, 35, 45, 55]])
def test_chunks_give_the_shards_the_per_pair_writer_gives(tmp_path, cuts):
    window = _window(PAIRS)
    by_pair = [(d, s, rows) for (d, s), rows in window.groupby(["Device", "Sensor"], sort=True)]
    from_pairs = write_partitions(tmp_path / "pairs", iter(by_pair), "shard", shard_rows=12)
    bounds = [0, *cuts, len(window)]  # multiples of 5: chunks of whole pairs
    chunks = [window.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    written = write_shards_of_chunks(tmp_path / "chunks", iter(chunks), shard_rows=12)
    assert written.rows == len(window)
    expected = _shards(tmp_path / "pairs", from_pairs)
    got = _shards(tmp_path / "chunks", written)
    assert [len(shard) for shard in got] == [15] * 4 + [10]
    assert len(got) == len(expected)
    for left, right in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(left, right)
    assert read_index(tmp_path / "chunks") == read_index(tmp_path / "pairs")


def test_pairs_differing_only_in_case_stay_in_one_shard(tmp_path):
    """Under a case-insensitive collation "dev-1" and "DEV-1" come back interleaved."""
    window = _window([("dev-0", "t"), ("dev-1", "t"), ("DEV-1", "t"), ("dev-2", "t")], rows=4)
    mixed = window.iloc[4:12].sort_values("TS", kind="mergesort")  # dev-1 / DEV-1 interleaved
    chunks = [window.iloc[:4], mixed, window.iloc[12:]]
    written = write_shards_of_chunks(tmp_path / "x", iter(chunks), shard_rows=4)
    shards = _shards(tmp_path / "x", written)
    assert [sorted(set(shard["Device"])) for shard in shards] == [
        ["dev-0"],
        ["DEV-1", "dev-1"],
        ["dev-2"],
    ]


def test_a_chunk_holds_back_the_last_case_insensitive_run():
    window = _window([("dev-0", "t"), ("dev-1", "t"), ("DEV-1", "t")], rows=2)
    interleaved = pd.concat([window.iloc[:2], window.iloc[[2, 4, 3, 5]]], ignore_index=True)
    assert db._last_run_start(interleaved) == 2
    assert db._last_run_start(window.iloc[:2]) == 0


def test_an_empty_window_still_gets_its_placeholder_shard(tmp_path):
    written = write_shards_of_chunks(tmp_path / "x", iter([]), shard_rows=10)
    assert written.rows == 0 and list((tmp_path / "x").glob("Shard=*/*.parquet"))


@pytest.fixture()
def engine(tmp_path):
    with db.database(f"sqlite:///{tmp_path / 's.db'}", create=True) as engine:
        db.replace_windows(engine, _window(PAIRS, rows=12))
        yield engine


def test_the_window_comes_in_chunks_of_whole_pairs_typed_as_the_contract(engine):
    start, end = datetime(2024, 1, 1, 0, 10), datetime(2024, 1, 1, 0, 50)  # 8 rows a pair
    chunks = list(db.iter_window_chunks(engine, start, end, chunk_rows=20))
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk) % 8 == 0, "whole pairs only"
        assert list(chunk.columns) == list(SQL_COLUMNS)
        assert str(chunk["TS"].dtype) == "datetime64[us]"
        assert chunk["Value"].dtype == "float64" and chunk["Count"].dtype == "int64"
    got = pd.concat(chunks, ignore_index=True)
    expected = _window(PAIRS, rows=12)
    expected = expected[(expected["TS"] > start) & (expected["TS"] <= end)]
    expected = expected.sort_values(["Device", "Sensor", "TS"], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected[list(SQL_COLUMNS)], check_dtype=False)
    assert got["TS"].min() == pd.Timestamp("2024-01-01 00:15"), "start exclusive"
    pairs = list(db.iter_pair_readings(engine, start, end, chunk_rows=20))
    assert [(d, s) for d, s, _ in pairs] == sorted(PAIRS)
    assert all(len(rows) == 8 for _, _, rows in pairs)


def test_text_and_datetime_timestamps_read_the_same():
    """SQLite's driver returns TS as text, pyodbc as datetimes."""
    text = [("2024-01-01 00:05:00.000000", "d", "s", 1.0, 0.0, 2.0, 5)]
    stamps = [(datetime(2024, 1, 1, 0, 5), "d", "s", 1.0, 0.0, 2.0, 5)]
    pd.testing.assert_frame_equal(db._columns(text), db._columns(stamps))
    assert db._columns(text)["TS"].iat[0] == pd.Timestamp("2024-01-01 00:05")


def test_a_pair_frame_that_goes_on_with_the_same_key_in_another_case_is_not_cut_off(tmp_path):
    """Per-pair frames as a case-insensitive collation yields them: dev-1, DEV-1, dev-1 again."""
    window = _window([("dev-0", "t"), ("dev-1", "t"), ("DEV-1", "t"), ("dev-2", "t")], rows=4)
    dev1, upper = window.iloc[4:8], window.iloc[8:12]
    pairs = [window.iloc[:4], dev1.iloc[:2], upper, dev1.iloc[2:], window.iloc[12:]]
    triples = [(f["Device"].iat[0], f["Sensor"].iat[0], f) for f in pairs]
    written = write_partitions(tmp_path / "x", iter(triples), "shard", shard_rows=2)
    shards = _shards(tmp_path / "x", written)
    assert [len(shard) for shard in shards] == [4, 8, 4]


@pytest.mark.parametrize(
    "rows",
    [
        [("2024-01-01 00:05:00.000000", "d", "s", 1.5, 0.0, 2.0, 5)],
        [("2024-01-01 00:05:00", "dev-é", "温度", -1e300, 0.0, 2.0, 0)],  # no fraction
        [("2024-01-01T00:05:00.123456", "d", "s", 1.0, 0.0, 2.0, 2**40)],  # a T, microseconds
        [(datetime(1969, 12, 31, 23, 59, 59, 999999), "d", "s", 1.0, 0.0, 2.0, 1)],
        [("2024-01-01 00:05:00", "d", "s", None, 0.0, 2.0, 5)],  # a missing value
        [("2024-01-01 00:05:00", "d", "s", "12,5", 0.0, 2.0, 5)],  # text in a number column
        [("2024-01-01 00:05:00", "d", "s", 1.0, 0.0, 2.0, None)],  # a missing count
        [("2024-01-01 00:05:00", "d", "s", 3, 0.0, 2.0, 5)],  # an integer Value
    ],
)
def test_the_arrow_read_gives_what_the_column_by_column_read_gives(rows, caplog):
    """Arrow takes the rows in one pass when it can; the careful path (names and keeps values
    that are not numbers) gives the same frame, and takes over when Arrow cannot."""
    rows = rows * 3
    expected = db._python_columns(rows, SQL_COLUMNS)
    pd.testing.assert_frame_equal(db._columns(rows), expected)


def test_the_arrow_read_is_the_one_taken_for_plain_rows(monkeypatch):
    rows = [("2024-01-01 00:05:00.000000", "d", "s", 1.0, 0.0, 2.0, 5)] * 4
    monkeypatch.setattr(db, "_python_columns", lambda *a: pytest.fail("the slow path was taken"))
    assert len(db._columns(rows)) == 4


@pytest.mark.parametrize("text", ["str", "object", "category"])
def test_runs_and_shards_are_the_same_whatever_holds_the_names(tmp_path, text):
    """The database's chunks hold Arrow-backed text; a caller's frames may hold Python objects
    or categories: the runs (exact names, then folded case) and the shard files are the same."""
    window = _window([("dev-0", "t"), ("dev-1", "t"), ("DEV-1", "t"), ("dev-1", "u")], rows=3)
    window = window.iloc[[0, 1, 2, 3, 6, 4, 7, 5, 8, 9, 10, 11]].reset_index(drop=True)
    assert pair_run_starts(window).tolist() == [0, 3, 9]  # dev-1/DEV-1 interleaved: one run
    held = window.astype({"Device": text, "Sensor": text})
    assert pair_run_starts(held).tolist() == [0, 3, 9]
    assert pair_run_starts(held.iloc[5:]).tolist() == [0, 4]  # positions, not index labels
    write_shards_of_chunks(tmp_path / "str", iter([window]), shard_rows=1)
    write_shards_of_chunks(tmp_path / text, iter([held]), shard_rows=1)
    files = sorted(p.relative_to(tmp_path / "str") for p in (tmp_path / "str").rglob("*.parquet"))
    assert len(files) == 4  # three shards and the index
    for name in files:
        assert (tmp_path / text / name).read_bytes() == (tmp_path / "str" / name).read_bytes()


def test_a_failed_shard_write_stops_the_extract_and_no_later_shard_is_written(
    tmp_path, monkeypatch
):
    """Shards are written by a second thread while the next rows are read: a write's error
    still reaches the caller, and nothing after the failed shard is written."""
    from scoring.data import extract_folder

    real, asked = extract_folder.write_shard, []

    def failing(root, index, frames):
        asked.append(index)
        if index == 1:
            raise OSError("No space left on device")
        return real(root, index, frames)

    monkeypatch.setattr(extract_folder, "write_shard", failing)
    chunks = [_window(PAIRS).iloc[a : a + 10] for a in range(0, 70, 10)]
    with pytest.raises(OSError, match="No space left"):
        write_shards_of_chunks(tmp_path / "x", iter(chunks), shard_rows=10)
    assert asked == [0, 1]
    assert [p.parent.name for p in (tmp_path / "x").glob("Shard=*/*.parquet")] == ["Shard=00000"]
