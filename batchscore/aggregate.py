"""``aggregate``: raw readings into tumbling windows in the ``SensorReadings`` table.

The same semantics as the Stream Analytics job in front of Azure SQL:

* windows of ``--window-minutes`` are aligned to the epoch and cover (start, end],
  so a reading exactly at 10:00 belongs to the window *ending* at 10:00;
* ``TS`` is the window end (``System.Timestamp()``), ``Value`` the average,
  ``MinValue``/``MaxValue``/``Count`` the rest of the window's story.

Re-aggregating a period replaces its rows, never duplicates them (see
:func:`scoring.data.db.replace_windows`).

A reading that cannot be aggregated is rejected with a reason (:data:`REJECT_REASONS`),
counted per file, logged and reported; the rest of the file is aggregated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

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
