"""Turn a run's input into mini-batches, as the Azure ML parallel job would.

Three kinds of input:

* an extract folder (an ``MLTable`` file + hive partitions ``Device=<d>/Sensor=<s>/*.parquet``):
  one mini-batch per partition (``partition_keys`` semantics). The parent only lists the
  partitions; each worker reads its own partition, so the fleet is never held in one process.
* one CSV or Parquet file of readings: read once, grouped by (Device, Sensor), one
  mini-batch per pair.
* a folder of files without an ``MLTable`` (generic batch inference, ``uri_folder``): the
  files sorted by relative path, grouped ``--mini-batch-size`` files (or bytes) at a time;
  ``run`` receives the list of paths.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.runner.contract import InvalidSettingsError, MiniBatchSize

log = logging.getLogger(__name__)

PARTITION_KEYS = ("Device", "Sensor")
READING_COLUMNS = ("TS", "Device", "Sensor", "Value")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)

KIND_PARTITION = "partition"  # the worker reads the partition's files
KIND_FRAME = "frame"  # the DataFrame travels with the task
KIND_FILES = "files"  # run() receives the file paths


@dataclass
class MiniBatchTask:
    """One mini-batch: what a worker needs to build ``mini_batch`` and its context.

    ``attempt`` (0-based) and ``final`` (no retry left) are set by the engine per dispatch.
    """

    index: int
    kind: str
    label: str
    keys: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    items: int | None = None
    attempt: int = 0
    final: bool = False


@dataclass
class InputPlan:
    """All mini-batches of a run, in a deterministic order (their ``index``)."""

    kind: str  # "mltable", "table-file" or "files"
    tasks: list[MiniBatchTask]
    #: input rows that belong to no mini-batch (e.g. no Device/Sensor): counted as failed items
    unassigned_items: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def tabular(self) -> bool:
        return self.kind != "files"


def plan_input(path: Path, mini_batch_size: MiniBatchSize) -> InputPlan:
    """Decide the input's kind and list its mini-batches (no partition data is read)."""
    if path.is_file():
        return _plan_table_file(path)
    if (path / "MLTable").is_file():
        return _plan_partitions(path)
    return _plan_files(path, mini_batch_size)


# --- tabular: hive-partitioned folder ---------------------------------------------------


def _plan_partitions(folder: Path) -> InputPlan:
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for data_file in folder.rglob("*"):
        if not data_file.is_file() or data_file.suffix.lower() not in PARQUET_SUFFIXES:
            continue
        if data_file.name.startswith((".", "_")):
            continue
        relative_dirs = data_file.relative_to(folder).parts[:-1]
        keys = tuple(_hive_pair(part) for part in relative_dirs if "=" in part)
        groups.setdefault(keys, []).append(str(data_file))
    tasks = []
    for index, keys in enumerate(sorted(groups, key=lambda k: tuple(v for _, v in k))):
        key_dict = dict(keys)
        label = "/".join(f"{name}={value}" for name, value in keys) or "(unpartitioned)"
        tasks.append(
            MiniBatchTask(
                index=index,
                kind=KIND_PARTITION,
                label=label,
                keys=key_dict,
                files=sorted(groups[keys]),
            )
        )
    notes = [] if tasks else [f"{folder} has an MLTable but no Parquet partitions"]
    return InputPlan(kind="mltable", tasks=tasks, notes=notes)


def _hive_pair(part: str) -> tuple[str, str]:
    name, _, value = part.partition("=")
    return unquote(name), unquote(value)


def read_partition(task: MiniBatchTask) -> pd.DataFrame:
    """Read one partition's Parquet files (in a worker) and add the key columns from its path.

    The path's values win over columns of the same name inside the files (hive semantics).
    """
    tables = [pq.ParquetFile(path).read() for path in task.files]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    frame = table.to_pandas()
    for name, value in task.keys.items():
        frame[name] = value
    return canonical_columns(frame)


def partition_row_count(task: MiniBatchTask) -> int | None:
    """Rows of a partition from the Parquet footers only; None if a footer is unreadable."""
    try:
        return sum(pq.ParquetFile(path).metadata.num_rows for path in task.files)
    except (OSError, pa.ArrowException):
        return None


# --- tabular: one file ------------------------------------------------------------------


def _plan_table_file(path: Path) -> InputPlan:
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        elif suffix in CSV_SUFFIXES:
            frame = pd.read_csv(path)
        else:
            raise InvalidSettingsError(
                f"--input {path}: expected a .csv or .parquet file, or a folder"
            )
    except (OSError, ValueError, pa.ArrowException) as exc:
        if isinstance(exc, InvalidSettingsError):
            raise
        raise InvalidSettingsError(f"--input {path}: cannot read it ({exc})") from exc
    frame = canonical_columns(frame)
    missing = [column for column in READING_COLUMNS if column not in frame.columns]
    if missing:
        raise InvalidSettingsError(
            f"--input {path}: missing column(s) {', '.join(missing)} "
            f"(has {', '.join(map(str, frame.columns))})"
        )
    keyless = frame[list(PARTITION_KEYS)].isna().any(axis=1)
    notes = []
    if keyless.any():
        notes.append(f"{int(keyless.sum())} row(s) of {path} have no Device/Sensor: not scored")
        frame = frame[~keyless]
    for key in PARTITION_KEYS:
        frame[key] = frame[key].astype(str)
    frame["TS"] = _naive_utc(frame["TS"])
    tasks = []
    for index, (values, group) in enumerate(frame.groupby(list(PARTITION_KEYS), sort=True)):
        keys = dict(zip(PARTITION_KEYS, values, strict=True))
        tasks.append(
            MiniBatchTask(
                index=index,
                kind=KIND_FRAME,
                label="/".join(f"{k}={v}" for k, v in keys.items()),
                keys=keys,
                frame=group.reset_index(drop=True),
                items=len(group),
            )
        )
    return InputPlan(
        kind="table-file", tasks=tasks, unassigned_items=int(keyless.sum()), notes=notes
    )


def _naive_utc(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC; text that is no timestamp becomes NaT (the script drops it)."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values


def canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename TS/Device/Sensor/Value matched case-insensitively; other columns kept as they are.

    Key columns come first (TS, Device, Sensor, Value, then the rest in their order).
    """
    wanted = {name.lower(): name for name in READING_COLUMNS}
    renames = {}
    for column in frame.columns:
        canonical = wanted.get(str(column).strip().lower())
        if canonical is not None and canonical not in renames.values():
            renames[column] = canonical
    frame = frame.rename(columns=renames)
    first = [name for name in READING_COLUMNS if name in frame.columns]
    rest = [column for column in frame.columns if column not in first]
    return frame[first + rest]


# --- files ------------------------------------------------------------------------------


def _plan_files(folder: Path, size: MiniBatchSize) -> InputPlan:
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise InvalidSettingsError(f"--input {folder}: the folder holds no files (and no MLTable)")
    batches: list[list[Path]] = []
    if size.files is not None:
        batches = [files[i : i + size.files] for i in range(0, len(files), size.files)]
    else:
        current: list[Path] = []
        current_bytes = 0
        for path in files:
            file_bytes = path.stat().st_size
            if current and current_bytes + file_bytes > size.bytes:
                batches.append(current)
                current, current_bytes = [], 0
            current.append(path)
            current_bytes += file_bytes
        batches.append(current)
    tasks = []
    for index, batch in enumerate(batches):
        first = batch[0].relative_to(folder).as_posix()
        label = first if len(batch) == 1 else f"{first} (+{len(batch) - 1} more)"
        tasks.append(
            MiniBatchTask(
                index=index,
                kind=KIND_FILES,
                label=label,
                files=[str(p) for p in batch],
                items=len(batch),
            )
        )
    return InputPlan(kind="files", tasks=tasks)
