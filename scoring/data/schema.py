"""The column contract shared by every stage, and the helpers that enforce it.

Readings (what ``simulate`` writes raw and ``extract`` hands to the scorer):
``TS`` (naive UTC timestamp; for aggregated readings the *end* of the window),
``Device`` (str), ``Sensor`` (str), ``Value`` (float). Extra columns are kept and
ignored; input column names are matched case-insensitively.

Predictions (what the score step answers, one row per input row): the reading's ``TS``,
``Device``, ``Sensor``, ``Value``, then ``Score`` (decision value), ``IsAnomaly`` (0/1),
``ModelVersion`` and ``Status``: ``ok`` when scored, else why not (:data:`ROW_STATUSES`), with
``Score`` and ``IsAnomaly`` empty. Azure ML's parallel job counts a mini-batch that answers
fewer rows than it got as failed, so no input row is ever dropped silently.

Ground truth of simulated readings travels beside them in the same file:
``InjectedAnomaly`` (0/1) and ``AnomalyKind`` ("" / "spike" / "dip" / "stuck").
It is deliberately not called ``IsAnomaly``, which is the *predicted* flag.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from scoring.data.files import TableFormatError, read_table, write_table

__all__ = [
    "TS",
    "DEVICE",
    "SENSOR",
    "VALUE",
    "MIN_VALUE",
    "MAX_VALUE",
    "COUNT",
    "SCORE",
    "IS_ANOMALY",
    "MODEL_VERSION",
    "STATUS",
    "ROW_STATUSES",
    "STATUS_OK",
    "PREDICTION_SCHEMA",
    "INJECTED_ANOMALY",
    "ANOMALY_KIND",
    "READING_COLUMNS",
    "SQL_COLUMNS",
    "READINGS_TABLE",
    "PREDICTION_COLUMNS",
    "PARTITION_KEYS",
    "empty_predictions",
    "predictions_table",
    "TableFormatError",
    "read_table",
    "write_table",
    "contract_columns",
    "normalize_key",
    "normalize_readings",
    "pair_changes",
    "to_float",
    "invalid_reading_reasons",
    "to_naive_utc",
    "encode_partition_value",
    "decode_partition_value",
]

TS = "TS"
DEVICE = "Device"
SENSOR = "Sensor"
VALUE = "Value"
MIN_VALUE = "MinValue"
MAX_VALUE = "MaxValue"
COUNT = "Count"
SCORE = "Score"
IS_ANOMALY = "IsAnomaly"
MODEL_VERSION = "ModelVersion"
STATUS = "Status"
INJECTED_ANOMALY = "InjectedAnomaly"
ANOMALY_KIND = "AnomalyKind"

READING_COLUMNS: tuple[str, ...] = (TS, DEVICE, SENSOR, VALUE)
SQL_COLUMNS: tuple[str, ...] = (TS, DEVICE, SENSOR, VALUE, MIN_VALUE, MAX_VALUE, COUNT)
#: the database table of aggregated readings (SQL_COLUMNS): aggregate writes it, train and
#: extract read it
READINGS_TABLE = "SensorReadings"
PREDICTION_COLUMNS: tuple[str, ...] = (
    TS,
    DEVICE,
    SENSOR,
    VALUE,
    SCORE,
    IS_ANOMALY,
    MODEL_VERSION,
    STATUS,
)

#: a row's ``Status``: scored, or why it could not be
STATUS_OK = "ok"
ROW_STATUSES: dict[str, str] = {
    STATUS_OK: "scored",
    "missing_ts": "the reading has no (parseable) TS",
    "missing_key": "the reading has no Device or Sensor",
    "invalid_value": "a model input (Value) is missing, not a number or infinite",
    "no_model": "the model store has no model for the pair",
    "model_error": "the pair's model could not be loaded or failed to score",
}

#: the predictions' column types, from the contract (never from whichever rows came first)
PREDICTION_SCHEMA = pa.schema(
    [
        pa.field(TS, pa.timestamp("us")),
        pa.field(DEVICE, pa.large_string()),
        pa.field(SENSOR, pa.large_string()),
        pa.field(VALUE, pa.float64()),
        pa.field(SCORE, pa.float64()),
        pa.field(IS_ANOMALY, pa.int64()),
        pa.field(MODEL_VERSION, pa.large_string()),
        pa.field(STATUS, pa.large_string()),
    ]
)
PARTITION_KEYS: tuple[str, ...] = (DEVICE, SENSOR)

# Columns whose canonical spelling is restored when an input spells them differently.
_CANONICAL = {
    name.lower(): name
    for name in (
        *SQL_COLUMNS,
        SCORE,
        IS_ANOMALY,
        MODEL_VERSION,
        INJECTED_ANOMALY,
        ANOMALY_KIND,
    )
}


def _canonical_names(df: pd.DataFrame, source: str) -> dict[str, str]:
    """Map each input column spelled like a contract column to the contract spelling."""
    renames: dict[str, str] = {}
    seen: dict[str, str] = {}
    for column in df.columns:
        canonical = _CANONICAL.get(str(column).lower())
        if canonical is None:
            continue
        if canonical in seen:
            raise ValueError(
                f"{source}: columns {seen[canonical]!r} and {column!r} both match {canonical!r}"
            )
        seen[canonical] = str(column)
        if column != canonical:
            renames[column] = canonical
    return renames


def to_naive_utc(values: pd.Series) -> pd.Series:
    """Parse timestamps; aware ones are converted to UTC, then the zone is dropped.

    Unparseable values become NaT (the caller decides whether to drop them).
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None)


def contract_columns(
    df: pd.DataFrame, source: str, required: tuple[str, ...] = READING_COLUMNS
) -> pd.DataFrame:
    """``df`` with its contract columns spelled canonically (names matched
    case-insensitively), nothing else changed.

    Raises ``ValueError`` naming ``source`` and the missing columns.
    """
    out = df.rename(columns=_canonical_names(df, source))
    missing = [name for name in required if name not in out.columns]
    if missing:
        found = ", ".join(map(str, df.columns)) or "none"
        raise ValueError(
            f"{source}: missing column(s) {', '.join(missing)} (found: {found}; "
            "names are matched case-insensitively)"
        )
    return out


def normalize_key(values: pd.Series) -> pd.Series:
    """A key column (``Device``, ``Sensor``, ``ModelVersion``) as text: each value as ``str``
    gives it, stripped; a blank or missing value is missing."""
    text = values.astype("str").str.strip()
    return text.where(text != "")


def pair_changes(frame: pd.DataFrame) -> np.ndarray:
    """Positions (from 1) where a frame's exact (Device, Sensor) differs from the row before.

    Equal names get equal codes (``pd.factorize``), so the rows are compared as integers, not
    as a Python string each: turning 200,000 Arrow-backed names into objects to compare them
    took longer than reading them from the database."""
    devices, _ = pd.factorize(frame[DEVICE])
    sensors, _ = pd.factorize(frame[SENSOR])
    return np.flatnonzero((devices[1:] != devices[:-1]) | (sensors[1:] != sensors[:-1])) + 1


def normalize_readings(
    df: pd.DataFrame, source: str, required: tuple[str, ...] = READING_COLUMNS
) -> pd.DataFrame:
    """Return ``df`` with contract columns spelled canonically and typed.

    * names are matched case-insensitively (``ts``, ``device`` ... are accepted);
    * extra columns are kept untouched;
    * ``TS`` becomes naive UTC ``datetime64``, ``Device``/``Sensor`` strings
      (:func:`normalize_key`), numeric columns float; values that do not parse become
      NaT/NaN rather than raising, so one bad row never sinks a batch (see
      :func:`invalid_reading_reasons`).

    Raises ``ValueError`` naming ``source`` and the missing columns.
    """
    out = contract_columns(df, source, required).copy()
    if TS in out.columns:
        out[TS] = to_naive_utc(out[TS])
    for key in (DEVICE, SENSOR, MODEL_VERSION):
        if key in out.columns:
            out[key] = normalize_key(out[key])
    for number in (VALUE, MIN_VALUE, MAX_VALUE, SCORE):
        if number in out.columns:
            out[number] = to_float(out[number])
    return out


def to_float(values: pd.Series) -> pd.Series:
    """A number column as float64; what does not parse as a number is NaN."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def invalid_reading_reasons(df: pd.DataFrame) -> pd.Series:
    """Per row, :data:`STATUS_OK` or why the reading cannot be used (``missing_ts``,
    ``missing_key`` or ``invalid_value`` of :data:`ROW_STATUSES`; the first that applies).
    Infinite values count as invalid (a mean over them is meaningless)."""
    finite = np.isfinite(df[VALUE].to_numpy(dtype="float64", na_value=np.nan))
    no_key = (df[DEVICE].isna() | df[SENSOR].isna()).to_numpy()
    no_ts = df[TS].isna().to_numpy()
    reasons = np.where(
        no_ts,
        "missing_ts",
        np.where(no_key, "missing_key", np.where(finite, STATUS_OK, "invalid_value")),
    )
    return pd.Series(reasons, index=df.index, dtype=object)


# Partition folder values must survive both Azure ML's partition-format parser (its
# pattern for a value is ``[^./\\]+``: no dots, no slashes) and every file system.
# Anything outside this set is written as %XX of its UTF-8 bytes.
_PATH_SAFE_CHARACTER = r"[A-Za-z0-9_\-]"
_PATH_SAFE = re.compile(_PATH_SAFE_CHARACTER)
_PATH_SAFE_TEXT = re.compile(_PATH_SAFE_CHARACTER + "+")  # a value of them is its own encoding


def encode_partition_value(value: str) -> str:
    """Percent-encode a Device/Sensor value for use as a partition folder name."""
    if value == "":
        raise ValueError("a partition value must not be empty")
    if _PATH_SAFE_TEXT.fullmatch(value):  # most keys (dev-001, temperature): once, not per char
        return value
    return "".join(
        char if _PATH_SAFE.fullmatch(char) else "".join(f"%{b:02X}" for b in char.encode())
        for char in value
    )


def decode_partition_value(text: str) -> str:
    """Inverse of :func:`encode_partition_value` (a no-op for plain names like dev-001)."""
    from urllib.parse import unquote

    return unquote(text, errors="strict")


def empty_predictions() -> pd.DataFrame:
    """A zero-row frame with the prediction columns and their types."""
    return PREDICTION_SCHEMA.empty_table().to_pandas()


def predictions_table(frame: pd.DataFrame) -> pa.Table:
    """Prediction rows as an Arrow table of exactly :data:`PREDICTION_SCHEMA` (names, order,
    types), whatever dtypes the frame's columns happened to get."""
    return pa.Table.from_pandas(
        frame[list(PREDICTION_COLUMNS)], schema=PREDICTION_SCHEMA, preserve_index=False
    )
