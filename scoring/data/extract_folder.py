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


def read_partition(files: Sequence[str | Path], keys: Mapping[str, str]) -> pd.DataFrame:
    """The rows of one partition's Parquet ``files`` with its ``keys`` (Device, Sensor) as
    columns after TS. Built in Arrow with one conversion to pandas: the local runner's workers
    read thousands of small partitions through this, so it is kept lean."""
    tables = []
    for path in files:
        try:
            tables.append(pq.ParquetFile(path).read())
        except (OSError, pa.ArrowException) as exc:
            raise ExtractFolderError(f"{path}: not a readable Parquet file ({exc})") from exc
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    table = table.drop_columns([name for name in keys if name in table.column_names])
    rows = table.num_rows
    front = [name for name in (TS,) if name in table.column_names]
    rest = [name for name in table.column_names if name not in front]
    key_columns = [pa.repeat(value, rows).cast(pa.large_string()) for value in keys.values()]
    table = pa.Table.from_arrays(
        [table.column(name) for name in front] + key_columns + [table.column(n) for n in rest],
        names=front + list(keys) + rest,
    )
    return table.to_pandas(use_threads=False)


MLTABLE_FILE = "MLTable"


SUMMARY_FILE = "_extract.json"


PART_FILE = "part-0.parquet"


PARTITION_FORMAT = "/Device={Device}/Sensor={Sensor}/" + PART_FILE


# Written by hand (not with PyYAML) so the scoring image needs no YAML library.
MLTABLE_TEXT = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - pattern: ./Device=*/Sensor=*/*.parquet
transformations:
  - read_parquet:
      include_path_column: false
  - extract_columns_from_partition_format:
      partition_format: "{PARTITION_FORMAT}"
"""


def partition_folder(device: str, sensor: str) -> Path:
    """Relative folder of one pair: ``Device=<d>/Sensor=<s>`` (values percent-encoded)."""
    return Path(f"{DEVICE}={encode_partition_value(device)}") / (
        f"{SENSOR}={encode_partition_value(sensor)}"
    )


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


def write_partition(root: Path, device: str, sensor: str, rows: pd.DataFrame) -> Path:
    folder = root / partition_folder(device, sensor)
    target = folder / PART_FILE
    frame = rows[FILE_SCHEMA.names]
    if target.exists():  # the same pair streamed twice (case-insensitive collation)
        earlier = pq.ParquetFile(target).read().to_pandas()
        frame = pd.concat([earlier, frame], ignore_index=True).sort_values(TS, kind="mergesort")
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_arrays(
        [pa.array(frame[field.name].to_numpy(), type=field.type) for field in FILE_SCHEMA],
        schema=FILE_SCHEMA,
    )
    pq.write_table(table, target)
    return target


def looks_like_extract(folder: Path) -> bool:
    return (folder / MLTABLE_FILE).is_file() or (folder / SUMMARY_FILE).is_file()


@dataclass(frozen=True)
class Partition:
    """One (Device, Sensor) partition of an extract folder."""

    device: str
    sensor: str
    folder: Path
    files: tuple[Path, ...]

    @property
    def keys(self) -> dict[str, str]:
        """Like Azure ML's ``mini_batch_context.partition_key_value``."""
        return {DEVICE: self.device, SENSOR: self.sensor}


def _key_value(name: str, expected_key: str) -> str | None:
    prefix = f"{expected_key}="
    if not name.startswith(prefix) or len(name) == len(prefix):
        return None
    return decode_partition_value(name[len(prefix) :])


def list_partitions(folder: str | Path) -> list[Partition]:
    """Every partition of an extract folder, sorted by (Device, Sensor); no data is read."""
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
    return sorted(found, key=lambda p: (p.device, p.sensor))


def iter_partitions(folder: str | Path) -> Iterator[tuple[dict[str, str], pd.DataFrame]]:
    """Yield ``(partition key dict, rows)`` per partition, in (Device, Sensor) order.

    Memory-light: one partition is read at a time. Key values are exact strings
    ("001" stays "001"). For per-partition error handling or to hand partitions to
    worker processes, use :func:`list_partitions` and :func:`read_partition`.
    """
    for partition in list_partitions(folder):
        yield partition.keys, read_partition(partition.files, partition.keys)


def read_summary(folder: str | Path) -> dict[str, object]:
    path = Path(folder) / SUMMARY_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExtractFolderError(f"{path}: cannot read the extract summary ({exc})") from exc
