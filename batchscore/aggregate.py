"""``aggregate``: raw readings into tumbling windows in the ``SensorReadings`` table.

The same semantics as the Stream Analytics job in front of Azure SQL:

* windows of ``--window-minutes`` are aligned to the epoch and cover (start, end],
  so a reading exactly at 10:00 belongs to the window *ending* at 10:00;
* ``TS`` is the window end (``System.Timestamp()``), ``Value`` the average,
  ``MinValue``/``MaxValue``/``Count`` the rest of the window's story.

Re-aggregating a period replaces its rows, never duplicates them (see
:func:`scoring.data.db.replace_windows`). Rows with a missing or non-numeric Value, an
unparseable TS or an empty Device/Sensor are dropped with one warning naming the
count and the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from scoring.data.files import TableFormatError, read_table
from scoring.data.schema import (
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
from scoring.errors import UsageError

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
