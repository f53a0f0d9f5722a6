"""The column contract, table I/O by extension and the progress helper."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from scoring import progress as progress_module
from scoring.data.files import TableFormatError, atomic_path, read_table, table_kind, write_table
from scoring.data.schema import (
    DEVICE,
    READING_COLUMNS,
    TS,
    VALUE,
    decode_partition_value,
    encode_partition_value,
    invalid_reading_reasons,
    normalize_readings,
)
from scoring.progress import progress, progress_bar


def _frame(**columns) -> pd.DataFrame:
    base = {
        "ts": ["2024-01-01 10:00:00", "2024-01-01 10:01:00"],
        "DEVICE": ["001", "dev-2"],
        "sensor": ["temperature", "humidity"],
        "value": ["21.5", 40],
    }
    base.update(columns)
    return pd.DataFrame(base)


# ------------------------------------------------------------------ normalize_readings


def test_normalize_matches_names_case_insensitively_and_keeps_extra_columns():
    out = normalize_readings(_frame(Site=["a", "b"]), source="in.csv")
    assert list(out.columns[:4]) == list(READING_COLUMNS)
    assert "Site" in out.columns and out["Site"].tolist() == ["a", "b"]
    assert out[DEVICE].tolist() == ["001", "dev-2"], "device ids must stay strings"
    assert out[VALUE].dtype == np.float64 and out[VALUE].tolist() == [21.5, 40.0]
    assert out[TS].tolist() == [
        pd.Timestamp("2024-01-01 10:00:00"),
        pd.Timestamp("2024-01-01 10:01:00"),
    ]


def test_normalize_names_the_source_and_every_missing_column():
    df = _frame().drop(columns=["sensor", "value"])
    with pytest.raises(ValueError) as info:
        normalize_readings(df, source="readings.parquet")
    message = str(info.value)
    assert "readings.parquet" in message
    assert "Sensor" in message and "Value" in message
    assert "TS" not in message.split("(found")[0]


def test_normalize_rejects_two_spellings_of_one_column():
    df = _frame()
    df["Ts"] = df["ts"]
    with pytest.raises(ValueError, match="both match 'TS'"):
        normalize_readings(df, source="x.csv")


def test_normalize_converts_aware_timestamps_to_naive_utc():
    df = _frame(ts=["2024-01-01T12:00:00+02:00", "2024-01-01T10:01:00Z"])
    out = normalize_readings(df, source="x")
    assert out[TS].dt.tz is None
    assert out[TS].tolist() == [
        pd.Timestamp("2024-01-01 10:00:00"),
        pd.Timestamp("2024-01-01 10:01:00"),
    ]


def test_invalid_reading_reasons_name_every_kind_of_bad_row():
    df = pd.DataFrame(
        {
            "TS": ["2024-01-01 10:00", "not a time", "2024-01-01 10:02", "2024-01-01 10:03"] * 2,
            "Device": ["d", "d", "", "d", "d", "d", "d", None],
            "Sensor": ["s"] * 8,
            "Value": ["1.5", "2", "3", "abc", None, "inf", "7", "8"],
        }
    )
    reasons = invalid_reading_reasons(normalize_readings(df, "bad.csv"))
    assert reasons.tolist() == [
        "ok",
        "missing_ts",
        "missing_key",
        "invalid_value",  # 'abc'
        "invalid_value",  # None
        "missing_ts",  # unparseable TS (and an infinite value: the first reason counts)
        "ok",
        "missing_key",
    ]


# ------------------------------------------------------------------ table I/O


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_then_read_round_trips_and_keeps_leading_zeros(tmp_path, suffix):
    df = normalize_readings(_frame(), source="mem")
    path = write_table(df, tmp_path / f"r{suffix}")
    back = normalize_readings(read_table(path), source=str(path))
    assert back[DEVICE].tolist() == ["001", "dev-2"]
    pd.testing.assert_frame_equal(back[list(READING_COLUMNS)], df[list(READING_COLUMNS)])
    assert [p.name for p in tmp_path.iterdir()] == [f"r{suffix}"], "no temp files left"


def test_unknown_extension_is_named(tmp_path):
    with pytest.raises(TableFormatError, match=r"r\.json.*'\.json'"):
        table_kind(tmp_path / "r.json")
    with pytest.raises(TableFormatError, match="unsupported"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "r.txt")


def test_missing_empty_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_table(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TableFormatError, match="empty.csv: the file is empty"):
        read_table(empty)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"this is not parquet at all")
    with pytest.raises(TableFormatError, match="corrupt.parquet: not a readable Parquet"):
        read_table(corrupt)


def test_atomic_path_keeps_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


# ------------------------------------------------------------------ partition values


@pytest.mark.parametrize(
    "value", ["dev-001", "001", "temperature_2", "a.b", "x/y", "50%", "Zürich", "a b\\c"]
)
def test_partition_values_round_trip_and_are_path_safe(value):
    encoded = encode_partition_value(value)
    assert decode_partition_value(encoded) == value
    # Azure ML's partition-format parser takes a value as [^./\\]+
    assert not set(encoded) & set("./\\ "), encoded


def test_plain_partition_values_are_unchanged():
    assert encode_partition_value("dev-001") == "dev-001"
    with pytest.raises(ValueError):
        encode_partition_value("")


# ------------------------------------------------------------------ progress


def test_progress_in_log_mode_logs_a_summary_and_yields_everything(monkeypatch, caplog):
    monkeypatch.setenv("SCORING_PROGRESS", "log")
    caplog.set_level(logging.INFO, logger="scoring.progress")
    items = list(progress(range(5), desc="counting", unit="item"))
    assert items == [0, 1, 2, 3, 4]
    lines = [r.getMessage() for r in caplog.records if r.name == "scoring.progress"]
    assert lines and lines[-1].startswith("counting: 5/5 item (100%)")


def test_progress_bar_logs_periodically_when_the_interval_passes(monkeypatch, caplog):
    monkeypatch.setenv("SCORING_PROGRESS", "log")
    monkeypatch.setenv("SCORING_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="scoring.progress")
    with progress_bar(total=3, desc="rows") as bar:
        for _ in range(3):
            bar.update(1)
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" in ")[0] for m in messages] == [
        "rows: 1/3 it (33%)",
        "rows: 2/3 it (67%)",
        "rows: 3/3 it (100%)",
        "rows: 3/3 it (100%)",
    ]


def test_progress_off_is_silent_and_bar_mode_uses_tqdm(monkeypatch, caplog, capsys):
    monkeypatch.setenv("SCORING_PROGRESS", "off")
    caplog.set_level(logging.INFO)
    assert list(progress([1, 2], desc="quiet")) == [1, 2]
    assert not caplog.records
    monkeypatch.setenv("SCORING_PROGRESS", "bar")
    assert list(progress([1, 2, 3], desc="shown")) == [1, 2, 3]
    assert "shown" in capsys.readouterr().err


def test_auto_mode_follows_the_terminal(monkeypatch):
    monkeypatch.delenv("SCORING_PROGRESS", raising=False)

    class FakeStderr:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.setattr(progress_module.sys, "stderr", FakeStderr(False))
    assert progress_module._mode() == "log"
    monkeypatch.setattr(progress_module.sys, "stderr", FakeStderr(True))
    assert progress_module._mode() == "bar"


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = write_table(normalize_readings(_frame(), source="mem"), tmp_path / "r.parquet")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
