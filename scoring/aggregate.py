"""``aggregate``: raw readings into tumbling windows in the ``SensorReadings`` table.

The same semantics as the Stream Analytics job in front of Azure SQL:

* windows of ``--window-minutes`` are aligned to the epoch and cover (start, end],
  so a reading exactly at 10:00 belongs to the window *ending* at 10:00;
* ``TS`` is the window end (``System.Timestamp()``), ``Value`` the average,
  ``MinValue``/``MaxValue``/``Count`` the rest of the window's story.

Re-aggregating a period replaces its rows, never duplicates them (see
:func:`scoring.db.replace_windows`). Rows with a missing or non-numeric Value, an
unparseable TS or an empty Device/Sensor are dropped with one warning naming the
count and the file.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from scoring.db import DEFAULT_DB_URL, DatabaseError, ensure_table, open_database, replace_windows
from scoring.io_utils import TableFormatError, read_table
from scoring.schema import (
    COUNT,
    DEVICE,
    MAX_VALUE,
    MIN_VALUE,
    SENSOR,
    SQL_COLUMNS,
    TS,
    VALUE,
    drop_invalid_readings,
    normalize_readings,
)

log = logging.getLogger(__name__)

DEFAULT_WINDOW_MINUTES = 5


def window_end(ts: pd.Series, window_minutes: int) -> pd.Series:
    """The end of the (start, end] tumbling window each timestamp falls into."""
    return ts.dt.ceil(pd.Timedelta(minutes=window_minutes))


def aggregate_readings(readings: pd.DataFrame, window_minutes: int) -> pd.DataFrame:
    """Clean, normalised readings -> one row per (Device, Sensor, window end)."""
    keyed = readings[[TS, DEVICE, SENSOR, VALUE]].assign(
        **{TS: window_end(readings[TS], window_minutes)}
    )
    windows = (
        keyed.groupby([DEVICE, SENSOR, TS], sort=True)[VALUE]
        .agg(["mean", "min", "max", "count"])
        .rename(columns={"mean": VALUE, "min": MIN_VALUE, "max": MAX_VALUE, "count": COUNT})
        .reset_index()
    )
    windows[COUNT] = windows[COUNT].astype("int64")
    return windows[list(SQL_COLUMNS)]


def load_readings(path: Path) -> pd.DataFrame:
    """Read, normalise and clean a raw readings file; bad rows dropped with a warning."""
    from scoring.cli import UsageError

    try:
        raw = read_table(path)
        readings = normalize_readings(raw, source=str(path))
    except (OSError, TableFormatError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if readings.empty:
        raise UsageError(f"{path}: the file has no readings")
    readings, dropped = drop_invalid_readings(readings, source=str(path))
    if dropped:
        log.warning(
            "%s: dropped %d of %d row(s) with a missing or non-numeric TS/Device/Sensor/Value",
            path,
            dropped,
            dropped + len(readings),
        )
    if readings.empty:
        raise UsageError(f"{path}: no valid readings (every row was dropped)")
    return readings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True, help="raw readings (.csv or .parquet)")
    parser.add_argument(
        "--db",
        default=DEFAULT_DB_URL,
        help=f"SQLAlchemy database URL (default: {DEFAULT_DB_URL}, in the current folder)",
    )
    parser.add_argument(
        "--window-minutes",
        type=int,
        default=DEFAULT_WINDOW_MINUTES,
        help=f"tumbling window length in minutes (default: {DEFAULT_WINDOW_MINUTES})",
    )


def run(args: argparse.Namespace) -> int:
    from scoring.cli import UsageError

    if args.window_minutes < 1:
        raise UsageError("--window-minutes must be at least 1")
    readings = load_readings(args.input)
    try:
        engine = open_database(args.db, create=True)
    except DatabaseError as exc:
        raise UsageError(f"--db {exc}") from exc
    try:
        ensure_table(engine)
        windows = aggregate_readings(readings, args.window_minutes)
        replaced = replace_windows(engine, windows)
    finally:
        engine.dispose()
    log.info(
        "aggregated %d readings into %d windows of %d min (%s .. %s); replaced %d existing row(s)",
        len(readings),
        len(windows),
        args.window_minutes,
        windows[TS].min(),
        windows[TS].max(),
        replaced,
    )
    return 0
