"""``aggregate``: raw readings into tumbling windows in the ``SensorReadings`` table.

The same semantics as the Stream Analytics job in front of Azure SQL:

* windows of ``--window-minutes`` are aligned to the epoch and cover (start, end],
  so a reading exactly at 10:00 belongs to the window *ending* at 10:00;
* ``TS`` is the window end (``System.Timestamp()``), ``Value`` the average,
  ``MinValue``/``MaxValue``/``Count`` the rest of the window's story.

Files arrive one after the other, and a window may straddle two of them (an hourly file
holds the reading at 01:00:00 that belongs to the window *ending* 01:00, whose other
readings came in the file before). So every accepted reading is kept in the side table
``SensorReadingsRaw``, keyed by (Device, Sensor, TS), and each window a file touches is
recomputed from every reading ever given for it (:func:`merge_readings`). Consecutive files
give exactly what the same readings give at once, the same file twice counts once, and
overlapping files give their union; a reading given again with another value replaces the
earlier one (a correction). Per-window sums and counts would have needed a record of
which readings were counted to stay exact under repeats and overlaps: that record is the
readings themselves, so they are kept instead.

A reading that cannot be aggregated is rejected with a reason (:data:`REJECT_REASONS`),
counted per file, logged and reported; the rest of the file is aggregated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from scoring.data.db import readings_transaction
from scoring.data.files import TableFormatError, read_table
from scoring.data.schema import (
    COUNT,
    DEVICE,
    MAX_VALUE,
    MIN_VALUE,
    ROW_STATUSES,
    SENSOR,
    SQL_COLUMNS,
    STATUS_OK,
    TS,
    VALUE,
    invalid_reading_reasons,
    normalize_readings,
)
from scoring.errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_WINDOW_MINUTES = 5

#: Largest |Value| aggregated. Its square summed over 10^8 readings stays finite in double
#: precision, so neither a window's average here nor a model's variance in training
#: overflows (two readings of 1e308 averaged to ``inf``); no sensor measures beyond it.
MAX_ABS_VALUE = 1e150

#: why a reading is not aggregated
REJECT_REASONS: dict[str, str] = {
    "missing_ts": ROW_STATUSES["missing_ts"],
    "missing_key": ROW_STATUSES["missing_key"],
    "invalid_value": ROW_STATUSES["invalid_value"],
    "value_out_of_range": f"|Value| above {MAX_ABS_VALUE:g}",
    "ts_out_of_range": "its window would end outside the years 1 to 9999 (what "
    "databases and Python store)",
    "repeated_reading": "another row of the same file has its (Device, Sensor, TS): "
    "the last one counts",
}

#: last instant a database's datetime (and Python's) can hold
_LATEST = pd.Timestamp(datetime.max)
_EARLIEST = pd.Timestamp(datetime.min)


@dataclass
class LoadedReadings:
    """A file's usable readings and how many rows were rejected, per reason."""

    readings: pd.DataFrame
    rows: int
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclass(frozen=True)
class MergeResult:
    """What :func:`merge_readings` changed."""

    readings_stored: int
    readings_replaced: int
    windows: pd.DataFrame
    windows_replaced: int


def window_end(ts: pd.Series, window_minutes: int) -> pd.Series:
    """The end of the (start, end] tumbling window each timestamp falls into."""
    return ts.dt.ceil(pd.Timedelta(minutes=window_minutes))


def latest_window_end(window_minutes: int) -> pd.Timestamp:
    """The last window end a database can store: readings after it have no window."""
    return _LATEST.floor(pd.Timedelta(minutes=window_minutes))


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


def reject_readings(
    readings: pd.DataFrame, window_minutes: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Readings that can be aggregated, and how many rows were rejected for each reason of
    :data:`REJECT_REASONS`. Each rule looks at one reading alone, so whether a reading counts
    never depends on which file it came in."""
    reasons = invalid_reading_reasons(readings)
    values = readings[VALUE].to_numpy(dtype="float64", na_value=0.0)
    stamps = readings[TS]
    outside = (stamps <= _EARLIEST) | (stamps > latest_window_end(window_minutes))
    for reason, bad in (
        ("value_out_of_range", abs(values) > MAX_ABS_VALUE),
        ("ts_out_of_range", outside.to_numpy()),
    ):
        reasons[(reasons == STATUS_OK).to_numpy() & bad] = reason
    usable = reasons == STATUS_OK
    repeated = readings[usable].duplicated([DEVICE, SENSOR, TS], keep="last")
    reasons[repeated[repeated].index] = "repeated_reading"
    counts = reasons.value_counts(sort=False)
    rejected = {reason: int(counts[reason]) for reason in REJECT_REASONS if reason in counts}
    return readings.loc[reasons == STATUS_OK].reset_index(drop=True), rejected


def load_readings(path: Path, window_minutes: int) -> LoadedReadings:
    """Read, normalise and clean a raw readings file; rejected rows counted and logged."""
    try:
        raw = read_table(path)
        readings = normalize_readings(raw, source=str(path))
    except (OSError, TableFormatError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if readings.empty:
        raise UsageError(f"{path}: the file has no readings")
    kept, rejected = reject_readings(readings, window_minutes)
    loaded = LoadedReadings(kept, rows=len(readings), rejected=rejected)
    for reason, count in rejected.items():
        log.warning(
            "%s: rejected %d of %d row(s): %s (%s)",
            path,
            count,
            loaded.rows,
            reason,
            REJECT_REASONS[reason],
        )
    if kept.empty:
        raise UsageError(f"{path}: no valid readings (every row was rejected: {describe(loaded)})")
    return loaded


def describe(loaded: LoadedReadings) -> str:
    """``"2 value_out_of_range, 1 ts_out_of_range"`` (or ``"none rejected"``)."""
    if not loaded.rejected:
        return "none rejected"
    return ", ".join(f"{count} {reason}" for reason, count in loaded.rejected.items())


def merge_readings(engine: Engine, readings: pd.DataFrame, window_minutes: int) -> MergeResult:
    """Store ``readings`` beside every reading given before and recompute each window they
    touch from all of them, in one transaction.

    A window's readings may have come in several files: its row is always the aggregate of
    every reading stored for it, so files may come in any order, overlap or repeat.
    """
    touched = aggregate_readings(readings, window_minutes)[[DEVICE, SENSOR, TS]]
    first_start = touched[TS].min() - pd.Timedelta(minutes=window_minutes)
    with readings_transaction(engine) as transaction:
        replaced = transaction.store_readings(readings)
        stored = transaction.stored_readings(first_start, touched[TS].max())
        every = aggregate_readings(stored, window_minutes)
        windows = every.merge(touched, on=[DEVICE, SENSOR, TS], how="inner")
        windows_replaced = transaction.replace_windows(windows)
    return MergeResult(len(readings), replaced, windows, windows_replaced)
