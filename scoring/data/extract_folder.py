"""The extract folder: the format the extract step writes and the scoring side reads.

::

    DIR/
      MLTable                                   how Azure ML reads the folder
      _extract.json                             window start/end, row and partition counts
      Device=<device>/Sensor=<sensor>/part-0.parquet

The Parquet files hold ``TS, Value, MinValue, MaxValue, Count``; ``Device`` and ``Sensor``
come from the path only, through the MLTable's ``extract_columns_from_partition_format``
step, which is what lets the Azure ML parallel step use ``partition_keys: [Device, Sensor]``
(one mini-batch per pair). Values are percent-encoded
(:func:`scoring.data.schema.encode_partition_value`) when they hold anything but ASCII
letters, digits, ``-`` and ``_``: Azure ML's partition parser rejects dots and slashes in a
value. Azure ML hands such values to the entry script still encoded;
:func:`scoring.data.schema.decode_partition_value` undoes it.

Kept apart from :mod:`scoring.steps.extract` (which reads the database) so a scoring worker
does not import SQLAlchemy just to read its partitions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
)
from scoring.errors import UsageError


class ExtractFolderError(UsageError, ValueError):
    """A folder is not a readable extract (no MLTable, a corrupt partition file ...)."""


MLTABLE_FILE = "MLTable"
SUMMARY_FILE = "_extract.json"
#: rows per partition as the extract wrote them (folder, rows): what a run must account for
INDEX_FILE = "_partitions.parquet"
PART_FILE = "part-0.parquet"
PARTITION_FORMAT = "/Device={Device}/Sensor={Sensor}/" + PART_FILE
#: the longest folder name most file systems (and blob path segments) take, in bytes
MAX_FOLDER_NAME_BYTES = 255
#: an empty window still gets one (zero-row) partition: mltable raises on an MLTable whose
#: pattern matches no file (ScriptExecution.StreamAccess.NotFound), a zero-row file loads
EMPTY_WINDOW_VALUE = "_empty-window"

# Azure ML reads the folder through this file (mltable). The key columns come from the path
# only, which needs the path column: `extract_columns_from_partition_format` reads it, and
# with `include_path_column: false` every key is null (checked with mltable 1.7.0). The path
# column is dropped after, as the azureml-examples parallel sample 1a_oj_sales_prediction
# does (src/partition_data/partition_data.py). Written by hand: the image needs no YAML library.
MLTABLE_TEXT = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - pattern: ./Device=*/Sensor=*/*.parquet
transformations:
  - read_parquet:
      include_path_column: true
  - extract_columns_from_partition_format:
      partition_format: "{PARTITION_FORMAT}"
  - drop_columns:
      - Path
"""

# The file schema, fixed so every partition (and an empty one) reads back the same.
FILE_SCHEMA = pa.schema(
    [
        pa.field(TS, pa.timestamp("us")),
        pa.field(VALUE, pa.float64()),
        pa.field(MIN_VALUE, pa.float64()),
        pa.field(MAX_VALUE, pa.float64()),
        pa.field(COUNT, pa.int64()),
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


def write_empty_window(root: Path) -> Path:
    """The zero-row partition that keeps an empty window readable (see EMPTY_WINDOW_VALUE)."""
    folder = root / f"{DEVICE}={EMPTY_WINDOW_VALUE}" / f"{SENSOR}={EMPTY_WINDOW_VALUE}"
    return _write_rows(folder / PART_FILE, pd.DataFrame(columns=FILE_SCHEMA.names))


def _write_rows(target: Path, rows: pd.DataFrame) -> Path:
    frame = rows[FILE_SCHEMA.names]
    if target.exists():  # the same pair streamed twice (case-insensitive collation)
        earlier = pq.ParquetFile(target).read().to_pandas()
        frame = pd.concat([earlier, frame], ignore_index=True).sort_values(TS, kind="mergesort")
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_arrays(
        [pa.array(frame[field.name].to_numpy(), type=field.type) for field in FILE_SCHEMA],
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


def looks_like_extract(folder: Path) -> bool:
    return (folder / MLTABLE_FILE).is_file() or (folder / SUMMARY_FILE).is_file()


@dataclass(frozen=True)
class Partition:
    """One (Device, Sensor) partition folder of an extract, by its raw (encoded) values."""

    device_value: str
    sensor_value: str
    folder: Path
    files: tuple[Path, ...]

    @property
    def keys(self) -> dict[str, str]:
        """As Azure ML's ``mini_batch_context.partition_key_value``: the raw folder values."""
        return {DEVICE: self.device_value, SENSOR: self.sensor_value}

    @property
    def relative_folder(self) -> str:
        return f"{DEVICE}={self.device_value}/{SENSOR}={self.sensor_value}"

    @property
    def device(self) -> str:
        """The decoded Device (raises :class:`ValueError` for a value no encoder wrote)."""
        return decode_partition_value(self.device_value)

    @property
    def sensor(self) -> str:
        return decode_partition_value(self.sensor_value)


def _key_value(name: str, expected_key: str) -> str | None:
    prefix = f"{expected_key}="
    if not name.startswith(prefix) or len(name) == len(prefix):
        return None
    return name[len(prefix) :]


def list_partitions(folder: str | Path) -> list[Partition]:
    """Every partition of an extract folder, sorted by its raw folder values; no data is read
    and no value is decoded (a foreign folder fails its own mini-batch, not the listing)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExtractFolderError(f"{folder}: no such extract folder")
    if not (folder / MLTABLE_FILE).is_file():
        raise ExtractFolderError(f"{folder}: not an extract folder (no {MLTABLE_FILE} file)")
    found = []
    for device_dir in folder.iterdir():
        device = _key_value(device_dir.name, DEVICE) if device_dir.is_dir() else None
        if device is None:
            continue
        for sensor_dir in device_dir.iterdir():
            sensor = _key_value(sensor_dir.name, SENSOR) if sensor_dir.is_dir() else None
            if sensor is None:
                continue
            files = tuple(sorted(sensor_dir.glob("*.parquet")))
            if files:
                found.append(Partition(device, sensor, sensor_dir, files))
    return sorted(found, key=lambda p: (p.device_value, p.sensor_value))


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
