"""Turn a run's input into mini-batches, as the Azure ML parallel job would.

Three kinds of input:

* an extract folder (an ``MLTable`` file + hive partitions ``Device=<d>/Sensor=<s>/*.parquet``):
  one mini-batch per partition (``partition_keys`` semantics), handed to ``run()`` as the
  driver hands it: the partition's rows with the raw (percent-encoded) folder values in its
  key columns and in ``partition_key_value``. Where Microsoft's ``mltable`` package is
  installed (the scoring image) the folder is read through it, exactly as on the cluster;
  elsewhere the parent only lists the partitions (:func:`scoring.data.extract_folder
  .list_partitions`) and each worker reads its own with
  :func:`scoring.data.extract_folder.read_partition`, which a test holds equal to ``mltable``.
  Each partition's row count comes from the extract's own index, so rows of a partition that
  cannot be read still count as failed items.
* one CSV or Parquet file of readings: read once (:func:`scoring.data.files.read_table`,
  :func:`scoring.data.schema.normalize_readings`) and cut as an extract of the file would be.
  For the product's entry script, the shard layout: sorted by (Device, Sensor) (a pair's rows
  keep their order in the file), shards of whole pairs of about ``shard_rows`` rows, each with
  ``partition_key_value`` ``{"Shard": ...}`` and the keys as plain columns, so the whole file
  goes through the fleet kernel a shard at a time. For any other entry script, the pair
  layout's contract: one mini-batch per pair, its keys given as folder values.
* a folder of files without an ``MLTable`` (generic batch inference, ``uri_folder``): the
  files sorted by relative path, grouped ``--mini-batch-size`` files (or bytes) at a time;
  ``run`` receives the list of paths.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.data.files import TableFormatError, read_table
from scoring.data.schema import (
    PARTITION_KEYS,
    encode_partition_value,
    normalize_readings,
    pair_changes,
)
from scoring.partitioning import DEFAULT_SHARD_ROWS, SHARD, shard_value
from scoring.runner.contract import InvalidSettingsError, MiniBatchSize

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


def input_kind(path: Path) -> str:
    """``"table-file"``, ``"mltable"`` (an extract folder) or ``"files"``."""
    if path.is_file():
        return "table-file"
    if (path / "MLTable").is_file():
        return "mltable"
    return "files"


def plan_input(
    path: Path,
    mini_batch_size: MiniBatchSize,
    *,
    entry_script: Path | None = None,
    shard_rows: int = DEFAULT_SHARD_ROWS,
) -> InputPlan:
    """Decide the input's kind and list its mini-batches (no partition data is read).

    ``entry_script``: the script that will score them; a readings file is cut into shards
    of whole pairs for the product's own (:data:`scoring.steps.ENTRY_SCRIPT`), into one
    mini-batch per pair for any other."""
    kind = input_kind(path)
    if kind == "table-file":
        shards = entry_script is not None and _is_product_entry_script(entry_script)
        return _plan_table_file(path, shard_rows if shards else None)
    if kind == "mltable":
        return _plan_partitions(path)
    return _plan_files(path, mini_batch_size)


# --- tabular: hive-partitioned folder ---------------------------------------------------


def _plan_partitions(folder: Path) -> InputPlan:
    from scoring.data.extract_folder import (
        ExtractFolderError,
        is_marker_partition,
        list_partitions,
        read_index,
    )

    if mltable_available():
        return _plan_partitions_with_mltable(folder)
    try:
        recorded = read_index(folder)
        # An empty window's marker row exists for Azure ML's partitioner only: no work here.
        partitions = [p for p in list_partitions(folder) if not is_marker_partition(p, recorded)]
    except ExtractFolderError as exc:
        raise InvalidSettingsError(f"--input {exc}") from exc
    tasks = [
        MiniBatchTask(
            index=index,
            kind=KIND_PARTITION,
            label=partition.relative_folder,
            keys=partition.keys,
            files=[str(path) for path in partition.files],
            items=recorded.get(partition.relative_folder),
        )
        for index, partition in enumerate(partitions)
    ]
    notes = (
        []
        if tasks
        else [f"{folder} has an MLTable but no partitions (Shard= or Device=/Sensor= folders)"]
    )
    return InputPlan(kind="mltable", tasks=tasks, notes=notes)


def mltable_available() -> bool:
    """True where Microsoft's ``mltable`` package is installed (as in the scoring image)."""
    import importlib.util

    return importlib.util.find_spec("mltable") is not None


def _plan_partitions_with_mltable(folder: Path) -> InputPlan:
    """The folder read by ``mltable`` itself and split by its partition keys (``Shard``, or
    ``Device`` and ``Sensor``, as the extract's layout says), as the parallel driver does with
    ``partition_keys`` and ``mode: direct``."""
    import mltable

    from scoring.data.extract_folder import EMPTY_WINDOW_VALUE, LAYOUT_KEYS, layout_of
    from scoring.data.schema import DEVICE

    partition_keys = list(LAYOUT_KEYS[layout_of(folder)])
    try:
        frame = mltable.load(str(folder)).to_pandas_dataframe()
    except Exception as exc:  # mltable raises its own (azureml.dataprep) exception types
        raise InvalidSettingsError(f"--input {folder}: mltable cannot read it ({exc})") from exc
    if DEVICE in frame.columns:  # an empty window's marker row: for Azure ML's partitioner only
        frame = frame[frame[DEVICE] != EMPTY_WINDOW_VALUE]
    if frame.empty or any(key not in frame.columns for key in partition_keys):
        # an empty window's placeholder loads without columns: no mini-batch
        return InputPlan(kind="mltable", tasks=[], notes=[f"{folder}: no rows (mltable)"])
    groups = frame.groupby(partition_keys, sort=True, dropna=False)
    tasks = [
        _frame_task(index, {k: str(v) for k, v in zip(partition_keys, values, strict=True)}, group)
        for index, (values, group) in enumerate(groups)
    ]
    return InputPlan(kind="mltable", tasks=tasks)


def _frame_task(index: int, keys: dict[str, str], group: pd.DataFrame) -> MiniBatchTask:
    """A mini-batch of rows already in memory, labelled by its partition keys."""
    return MiniBatchTask(
        index=index,
        kind=KIND_FRAME,
        label="/".join(f"{k}={v}" for k, v in keys.items()),
        keys=keys,
        frame=group.reset_index(drop=True),
        items=len(group),
    )


def partition_row_count(task: MiniBatchTask) -> int | None:
    """Rows of a partition: as the extract recorded them, else from the Parquet footers only;
    None if neither is known."""
    if task.items is not None:
        return task.items
    try:
        return sum(pq.ParquetFile(path).metadata.num_rows for path in task.files)
    except (OSError, pa.ArrowException):
        return None


# --- tabular: one file ------------------------------------------------------------------


def _is_product_entry_script(entry_script: Path) -> bool:
    from scoring.steps import ENTRY_SCRIPT

    return Path(entry_script).resolve() == ENTRY_SCRIPT


def _plan_table_file(path: Path, shard_rows: int | None) -> InputPlan:
    """A readings file's mini-batches: shards of whole pairs (``shard_rows``), or one per pair
    (None)."""
    try:
        frame = normalize_readings(read_table(path), source=str(path))
    except (OSError, TableFormatError, ValueError) as exc:
        raise InvalidSettingsError(f"--input {exc}") from exc
    keyless = frame[list(PARTITION_KEYS)].isna().any(axis=1)
    notes = []
    if keyless.any():
        notes.append(f"{int(keyless.sum())} row(s) of {path} have no Device/Sensor: not scored")
        frame = frame[~keyless]
    tasks = _pair_tasks(frame) if shard_rows is None else _shard_tasks(frame, shard_rows)
    return InputPlan(
        kind="table-file", tasks=tasks, unassigned_items=int(keyless.sum()), notes=notes
    )


def _shard_tasks(frame: pd.DataFrame, shard_rows: int) -> list[MiniBatchTask]:
    """Whole pairs in key order, a shard closing at the first pair boundary once it holds
    ``shard_rows`` rows (the extract's rule, :func:`scoring.data.extract_folder
    .write_partitions`); a stable sort keeps each pair's rows in their order in the file."""
    frame = frame.sort_values(list(PARTITION_KEYS), kind="mergesort", ignore_index=True)
    bounds = [0]
    for start in pair_changes(frame).tolist():
        if start - bounds[-1] >= shard_rows:
            bounds.append(start)
    bounds.append(len(frame))
    tasks = []
    for index, (first, stop) in enumerate(itertools.pairwise(bounds)):
        if stop > first:
            value = shard_value(index)
            shard = frame.iloc[first:stop].assign(**{SHARD: value})
            tasks.append(_frame_task(index, {SHARD: value}, shard))
    return tasks


def _pair_tasks(frame: pd.DataFrame) -> list[MiniBatchTask]:
    """One mini-batch per pair, its keys as folder values (the pair layout's contract)."""
    tasks = []
    for index, (values, group) in enumerate(frame.groupby(list(PARTITION_KEYS), sort=True)):
        # The keys as an extract of this file would hand them over: folder values.
        keys = {k: encode_partition_value(v) for k, v in zip(PARTITION_KEYS, values, strict=True)}
        tasks.append(_frame_task(index, keys, group.assign(**keys)))
    return tasks


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
