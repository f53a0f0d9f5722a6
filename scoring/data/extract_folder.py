"""The extract folder: the format the extract step writes and the scoring side reads.

Two layouts, both read by Azure ML through the ``MLTable`` file (tabular input, ``mode:
direct``, one mini-batch per partition of ``partition_keys``):

* **shard** (the default): ``Shard=<00000>/part-0.parquet``, each file many whole
  (Device, Sensor) pairs sorted by Device, Sensor, TS, up to a target number of rows; the
  keys are ordinary columns (any stored value fits). ``partition_keys: [Shard]``. Scoring
  many pairs per mini-batch is what makes a fleet cheap (:mod:`scoring.models.fleet_kernel`).
* **pair**: ``Device=<d>/Sensor=<s>/part-0.parquet``, one folder per pair, the keys in the
  folder names only (percent-encoded, :func:`scoring.data.schema.encode_partition_value`;
  Azure ML hands them over still encoded). ``partition_keys: [Device, Sensor]``.

::

    DIR/
      MLTable               how Azure ML reads the folder
      _extract.json         window, layout, row and partition counts, pairs not extracted
      _partitions.parquet   rows per partition folder, as written
      Shard=00000/part-0.parquet   |   Device=<d>/Sensor=<s>/part-0.parquet

Kept apart from :mod:`scoring.steps.extract` (which reads the database) so a scoring worker
does not import SQLAlchemy just to read its partitions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.data.files import write_json
from scoring.data.schema import (
    COUNT,
    DEVICE,
    MAX_VALUE,
    MIN_VALUE,
    SENSOR,
    TS,
    VALUE,
    decode_partition_value,
    encode_partition_value,
    pair_changes,
)
from scoring.errors import UsageError
from scoring.partitioning import (
    LAYOUT_KEYS,
    LAYOUTS,
    PAIR_LAYOUT,
    SHARD,
    SHARD_LAYOUT,
    shard_value,
)

log = logging.getLogger(__name__)


class ExtractFolderError(UsageError, ValueError):
    """A folder is not a readable extract (no MLTable, a corrupt partition file ...)."""


MLTABLE_FILE = "MLTable"
SUMMARY_FILE = "_extract.json"
#: rows per partition as the extract wrote them (folder, rows): what a run must account for
INDEX_FILE = "_partitions.parquet"
PART_FILE = "part-0.parquet"
PARTITION_FORMAT = "/Device={Device}/Sensor={Sensor}/" + PART_FILE  # the pair layout's
#: the longest folder name most file systems (and blob path segments) take, in bytes
MAX_FOLDER_NAME_BYTES = 255
#: an empty window still gets one partition of one marker row (Device and Sensor this value,
#: no TS, no Value): mltable raises on an MLTable whose pattern matches no file
#: (ScriptExecution.StreamAccess.NotFound), and a zero-row file loads as zero rows and zero
#: partitions, so the parallel step would get no mini-batch at all, an outcome the docs do not
#: give (it may wait for its first task until first_task_creation_timeout and fail, and publish
#: would never run). With one row there is one partition, one mini-batch, answered by the entry
#: script without scoring (:func:`is_empty_window`), and publish reports the empty window.
EMPTY_WINDOW_VALUE = "_empty-window"


def partition_format(layout: str) -> str:
    """The MLTable's partition format of a layout."""
    keys = LAYOUT_KEYS[layout]
    return "/" + "/".join(f"{key}={{{key}}}" for key in keys) + "/" + PART_FILE


def mltable_text(layout: str) -> str:
    """The ``MLTable`` file of a layout.

    Azure ML reads the folder through it (mltable). The key columns come from the path, which
    needs the path column: ``extract_columns_from_partition_format`` reads it, and with
    ``include_path_column: false`` every key is null (checked with mltable 1.7.0). The path
    column is dropped after, as the azureml-examples parallel sample 1a_oj_sales_prediction
    does (src/partition_data/partition_data.py). Written by hand: the image needs no YAML
    library.
    """
    pattern = "/".join(f"{key}=*" for key in LAYOUT_KEYS[layout])
    return f"""\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - pattern: ./{pattern}/*.parquet
transformations:
  - read_parquet:
      include_path_column: true
  - extract_columns_from_partition_format:
      partition_format: "{partition_format(layout)}"
  - drop_columns:
      - Path
"""


MLTABLE_TEXT = mltable_text(PAIR_LAYOUT)  # the pair layout's


# The file schemas, fixed so every partition (and an empty one) reads back the same.
FILE_SCHEMA = pa.schema(
    [
        pa.field(TS, pa.timestamp("us")),
        pa.field(VALUE, pa.float64()),
        pa.field(MIN_VALUE, pa.float64()),
        pa.field(MAX_VALUE, pa.float64()),
        pa.field(COUNT, pa.int64()),
    ]
)
SHARD_SCHEMA = pa.schema(
    [
        pa.field(TS, pa.timestamp("us")),
        pa.field(DEVICE, pa.large_string()),
        pa.field(SENSOR, pa.large_string()),
        *(FILE_SCHEMA.field(name) for name in (VALUE, MIN_VALUE, MAX_VALUE, COUNT)),
    ]
)


def read_partition(files: Sequence[str | Path], keys: Mapping[str, str]) -> pd.DataFrame:
    """One partition as Azure ML's parallel driver hands it to ``run()``: the rows of its
    Parquet ``files`` with the ``keys`` (Device, Sensor) appended as text columns holding the
    raw folder values (still percent-encoded), the way ``mltable`` returns them.

    Built in Arrow with one conversion to pandas: the local runner's workers read thousands of
    small partitions through this, so it is kept lean. A test holds it equal to what the real
    ``mltable`` package returns for the same folder.
    """
    tables = []
    for path in files:
        try:
            tables.append(pq.ParquetFile(path).read())
        except (OSError, pa.ArrowException) as exc:
            raise ExtractFolderError(f"{path}: not a readable Parquet file ({exc})") from exc
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    table = table.drop_columns([name for name in keys if name in table.column_names])
    for name, value in keys.items():
        table = table.append_column(name, pa.repeat(value, table.num_rows).cast(pa.large_string()))
    return table.to_pandas(use_threads=False)


def folder_value(value: str) -> str:
    """A Device or Sensor value as a partition folder value; :class:`ValueError` naming it when
    the folder name would not fit (:data:`MAX_FOLDER_NAME_BYTES`)."""
    encoded = encode_partition_value(value)
    if len(encoded.encode()) + len(DEVICE) + 1 > MAX_FOLDER_NAME_BYTES:
        raise ValueError(
            f"{value[:40]!r}... ({len(value)} characters) is too long for a partition folder "
            f"name once encoded ({len(encoded.encode())} bytes; at most "
            f"{MAX_FOLDER_NAME_BYTES - len(DEVICE) - 1})"
        )
    return encoded


def partition_folder(device: str, sensor: str) -> Path:
    """Relative folder of one pair: ``Device=<d>/Sensor=<s>`` (values percent-encoded).
    Raises :class:`ValueError` naming a value whose folder name would be too long."""
    return Path(f"{DEVICE}={folder_value(device)}") / f"{SENSOR}={folder_value(sensor)}"


def write_partition(root: Path, device: str, sensor: str, rows: pd.DataFrame) -> Path:
    """Write (or, for a pair seen twice, extend) one pair's partition file under ``root``."""
    folder = root / partition_folder(device, sensor)
    return _write_rows(folder / PART_FILE, rows)


def shard_folder(index: int) -> Path:
    return Path(f"{SHARD}={shard_value(index)}")


def write_shard(root: Path, index: int, frames: Sequence[pd.DataFrame]) -> Path:
    """One shard: whole pairs' rows (each frame one pair, in key order) in one file."""
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    target = root / shard_folder(index) / PART_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_arrays(
        [
            pa.array(_values(frame[field.name]) if len(frame) else [], type=field.type)
            for field in SHARD_SCHEMA
        ],
        schema=SHARD_SCHEMA,
    )
    pq.write_table(table, target)
    return target


def write_empty_window(root: Path, layout: str = PAIR_LAYOUT) -> Path:
    """The one-row marker partition that keeps an empty window readable and scheduled (see
    EMPTY_WINDOW_VALUE); it is not in the index: the window's rows stay zero."""
    marker = pd.DataFrame(
        {
            TS: pd.Series([pd.NaT], dtype="datetime64[us]"),
            DEVICE: [EMPTY_WINDOW_VALUE],
            SENSOR: [EMPTY_WINDOW_VALUE],
            VALUE: [float("nan")],
            MIN_VALUE: [float("nan")],
            MAX_VALUE: [float("nan")],
            COUNT: [0],
        }
    )
    if layout == SHARD_LAYOUT:
        return write_shard(root, 0, [marker])
    folder = root / f"{DEVICE}={EMPTY_WINDOW_VALUE}" / f"{SENSOR}={EMPTY_WINDOW_VALUE}"
    return _write_rows(folder / PART_FILE, marker)


def is_empty_window(frame: pd.DataFrame, keys: Mapping[str, str]) -> bool:
    """Whether a mini-batch is an empty window's marker partition (keys from the folder, or
    the rows' own Device column in a shard)."""
    if keys.get(DEVICE) == EMPTY_WINDOW_VALUE:
        return True
    column = next((c for c in frame.columns if str(c).lower() == DEVICE.lower()), None)
    return (
        column is not None and len(frame) > 0 and bool((frame[column] == EMPTY_WINDOW_VALUE).all())
    )


def is_marker_partition(partition: Partition, recorded: Mapping[str, int]) -> bool:
    """Whether ``partition`` is an empty window's marker (a local reader leaves it out; the
    driver answers it on Azure). Only an extract whose index records no rows has one."""
    if recorded:
        return False
    if partition.keys.get(DEVICE) == EMPTY_WINDOW_VALUE:
        return True
    if SHARD not in partition.keys:
        return False
    table = pq.read_table([str(f) for f in partition.files], columns=[DEVICE], partitioning=None)
    return set(table.column(DEVICE).to_pylist()) == {EMPTY_WINDOW_VALUE}


def _write_rows(target: Path, rows: pd.DataFrame) -> Path:
    frame = rows[FILE_SCHEMA.names]
    if target.exists():  # the same pair streamed twice (case-insensitive collation)
        earlier = pq.ParquetFile(target).read().to_pandas()
        frame = pd.concat([earlier, frame], ignore_index=True).sort_values(TS, kind="mergesort")
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_arrays(
        [pa.array(_values(frame[field.name]), type=field.type) for field in FILE_SCHEMA],
        schema=FILE_SCHEMA,
    )
    pq.write_table(table, target)
    return target


def write_index(root: Path, rows_by_folder: Mapping[str, int]) -> Path:
    """``_partitions.parquet``: the rows each partition folder holds, as written."""
    target = root / INDEX_FILE
    table = pa.table(
        {
            "folder": pa.array(list(rows_by_folder), pa.large_string()),
            "rows": pa.array(list(rows_by_folder.values()), pa.int64()),
        }
    )
    pq.write_table(table, target)
    return target


def read_index(folder: str | Path) -> dict[str, int]:
    """Rows per partition folder as the extract recorded them ({} for an older extract)."""
    path = Path(folder) / INDEX_FILE
    if not path.is_file():
        return {}
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ExtractFolderError(f"{path}: not a readable partition index ({exc})") from exc
    return dict(
        zip(table.column("folder").to_pylist(), table.column("rows").to_pylist(), strict=True)
    )


@dataclass
class Written:
    """What :func:`write_partitions` wrote: rows, rows per partition folder, pairs left out."""

    rows: int = 0
    rows_by_folder: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, object]] = field(default_factory=list)


def _values(column: pd.Series):
    """A column for ``pa.array``: its numpy values, or (a nullable column, e.g. a Count read
    with a value that is not a number) its pandas array, whose missing values become nulls."""
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        return column.array
    return column.to_numpy()


def _write_pair_folders(build: Path, pairs) -> Written:
    """Every pair's rows into its partition; a pair whose name cannot be a folder is skipped
    alone and recorded with its name and reason (its rows are counted as not extracted)."""
    written = Written()
    for device, sensor, frame in pairs:
        try:
            folder = partition_folder(device, sensor)
        except ValueError as exc:
            log.error("Device=%r Sensor=%r not extracted: %s", device[:60], sensor[:60], exc)
            written.skipped.append(
                {"device": device, "sensor": sensor, "rows": len(frame), "reason": str(exc)}
            )
            continue
        write_partition(build, device, sensor, frame)
        key = folder.as_posix()
        written.rows_by_folder[key] = written.rows_by_folder.get(key, 0) + len(frame)
        written.rows += len(frame)
    return written


def pair_run_starts(frame: pd.DataFrame) -> np.ndarray:
    """Where each run of rows of one case-insensitive (Device, Sensor) begins (0 first), in a
    frame in key order: pairs a case-insensitive collation (SQL Server's default) may
    interleave form one run. Names are folded once per run of exact names, not per row."""
    if not len(frame):
        return np.zeros(0, dtype=np.int64)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), pair_changes(frame)])
    names = zip(
        frame[DEVICE].take(starts).tolist(), frame[SENSOR].take(starts).tolist(), strict=True
    )
    folded = np.array([f"{d.casefold()}\0{s.casefold()}" for d, s in names], dtype=object)
    new_key = np.ones(len(starts), dtype=bool)
    new_key[1:] = folded[1:] != folded[:-1]
    return starts[new_key]


def _folded_key(frame: pd.DataFrame, row: int) -> str:
    return f"{frame[DEVICE].iat[row].casefold()}\0{frame[SENSOR].iat[row].casefold()}"


def write_shards_of_chunks(root: Path, chunks, shard_rows: int) -> Written:
    """The shard layout from frames of rows in (Device, Sensor) order: the database's
    columnar chunks (:func:`scoring.data.db.iter_window_chunks`) or one frame per pair. Whole
    pairs in shards of about ``shard_rows`` rows: a shard closes only between pairs that
    differ case-insensitively (under SQL Server's case-insensitive collation "dev-1" and
    "Dev-1" come back interleaved, and no pair may be split across shards), at the first such
    boundary once it holds ``shard_rows`` rows. Boundaries are found a chunk at a time. The
    index and the empty window's placeholder are written too.

    A shard's Parquet file is written by a second thread while the next rows are read (Arrow
    encodes and writes without the GIL: about a tenth of a 100,000-pair extract); one write
    at a time, and at most one shard waits for it. A failed write is raised here, at the next
    shard or at the end, and no later shard is written."""
    written = Written()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as writer:
        _cut_shards(root, chunks, shard_rows, written, writer)
    if not written.rows_by_folder:
        write_empty_window(root, SHARD_LAYOUT)
    write_index(root, written.rows_by_folder)
    return written


def _cut_shards(
    root: Path, chunks, shard_rows: int, written: Written, writer: ThreadPoolExecutor
) -> None:
    """The chunks cut into shards, each handed to ``writer`` once the one before is written;
    returns when the last is."""
    pieces: list[pd.DataFrame] = []
    rows = 0
    writing: Future | None = None

    def flush() -> None:
        nonlocal pieces, rows, writing
        shard = pd.concat(pieces, ignore_index=True).sort_values(
            [DEVICE, SENSOR, TS], kind="mergesort", ignore_index=True
        )
        if writing is not None:
            writing.result()  # the shard before: written, or its error raised here
        index = len(written.rows_by_folder)
        writing = writer.submit(write_shard, root, index, [shard])
        written.rows_by_folder[shard_folder(index).as_posix()] = len(shard)
        pieces, rows = [], 0

    last_key = None
    for chunk in chunks:
        if not len(chunk):
            continue
        starts = pair_run_starts(chunk).tolist()
        first_key = _folded_key(chunk, 0)
        if first_key == last_key:  # the previous chunk's last pair goes on here
            starts = starts[1:]
        last_key = _folded_key(chunk, len(chunk) - 1)
        first = 0
        for start in starts:
            if rows + start - first >= shard_rows and (start > first or pieces):
                if start > first:
                    pieces.append(chunk.iloc[first:start])
                flush()
                first = start
        pieces.append(chunk.iloc[first:])
        rows += len(chunk) - first
        written.rows += len(chunk)
    if pieces:
        flush()
    if writing is not None:
        writing.result()


def write_partitions(root: Path, pairs, layout: str, shard_rows: int) -> Written:
    """Every pair's rows (an iterator of ``(device, sensor, rows)`` in key order) under
    ``root`` in ``layout``; an empty window still gets its marker partition (an MLTable that
    matches no file cannot be read). The index of rows per folder is written too."""
    if layout == SHARD_LAYOUT:
        return write_shards_of_chunks(root, (frame for _, _, frame in pairs), shard_rows)
    written = _write_pair_folders(root, pairs)
    if not written.rows_by_folder:
        write_empty_window(root, layout)
    write_index(root, written.rows_by_folder)
    return written


def finish_extract(root: Path, written: Written, layout: str, summary: dict[str, object]) -> None:
    """The MLTable and the summary, written last: a folder with them is a whole extract."""
    (root / MLTABLE_FILE).write_text(mltable_text(layout), encoding="utf-8")
    write_json(summary, root / SUMMARY_FILE)


def looks_like_extract(folder: Path) -> bool:
    return (folder / MLTABLE_FILE).is_file() or (folder / SUMMARY_FILE).is_file()


@dataclass(frozen=True)
class Partition:
    """One partition folder of an extract, by its raw folder values (``Shard=00000`` or
    ``Device=<encoded>/Sensor=<encoded>``)."""

    keys: dict[str, str]  # as Azure ML's ``mini_batch_context.partition_key_value``: raw
    folder: Path
    files: tuple[Path, ...]

    @property
    def relative_folder(self) -> str:
        return "/".join(f"{name}={value}" for name, value in self.keys.items())

    @property
    def device(self) -> str:
        """The decoded Device of a pair partition (:class:`ValueError` for a value no encoder
        wrote)."""
        return decode_partition_value(self.keys[DEVICE])

    @property
    def sensor(self) -> str:
        return decode_partition_value(self.keys[SENSOR])


def _key_value(name: str, expected_key: str) -> str | None:
    prefix = f"{expected_key}="
    if not name.startswith(prefix) or len(name) == len(prefix):
        return None
    return name[len(prefix) :]


def _partition_folders(
    folder: Path, keys: tuple[str, ...]
) -> Iterator[tuple[dict[str, str], Path]]:
    """Folders ``key1=v1/key2=v2/...`` below ``folder``, with their raw values."""
    level: list[tuple[dict[str, str], Path]] = [({}, folder)]
    for key in keys:
        deeper = []
        for found, parent in level:
            for child in parent.iterdir():
                value = _key_value(child.name, key) if child.is_dir() else None
                if value is not None:
                    deeper.append(({**found, key: value}, child))
        level = deeper
    yield from level


def layout_of(folder: Path) -> str:
    """The extract's layout, from its summary (an older or hand-made folder: pair)."""
    summary = folder / SUMMARY_FILE
    if summary.is_file():
        layout = read_summary(folder).get("layout", PAIR_LAYOUT)
        if layout in LAYOUTS:
            return str(layout)
    return SHARD_LAYOUT if any(folder.glob(f"{SHARD}=*")) else PAIR_LAYOUT


def list_partitions(folder: str | Path) -> list[Partition]:
    """Every partition of an extract folder, sorted by its raw folder values; no data is read
    and no value is decoded (a foreign folder fails its own mini-batch, not the listing)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExtractFolderError(f"{folder}: no such extract folder")
    if not (folder / MLTABLE_FILE).is_file():
        raise ExtractFolderError(f"{folder}: not an extract folder (no {MLTABLE_FILE} file)")
    found = []
    for keys, path in _partition_folders(folder, LAYOUT_KEYS[layout_of(folder)]):
        files = tuple(sorted(path.glob("*.parquet")))
        if files:
            found.append(Partition(keys, path, files))
    return sorted(found, key=lambda p: tuple(p.keys.values()))


def iter_partitions(folder: str | Path) -> Iterator[tuple[dict[str, str], pd.DataFrame]]:
    """Yield ``(partition key dict, rows)`` per partition, in folder order, as Azure ML's
    driver hands them to ``run()`` (raw key values, see :func:`read_partition`).

    Memory-light: one partition is read at a time. For per-partition error handling or to hand
    partitions to worker processes, use :func:`list_partitions` and :func:`read_partition`.
    """
    for partition in list_partitions(folder):
        yield partition.keys, read_partition(partition.files, partition.keys)


def read_summary(folder: str | Path) -> dict[str, object]:
    path = Path(folder) / SUMMARY_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExtractFolderError(f"{path}: cannot read the extract summary ({exc})") from exc
