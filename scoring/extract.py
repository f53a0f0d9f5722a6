"""``extract``: one scoring window of ``SensorReadings`` as partitioned Parquet + MLTable.

Readings with TS in (end - lookback, end] are written as::

    DIR/
      MLTable                                   how Azure ML reads the folder
      _extract.json                             window start/end, row and partition counts
      Device=<device>/Sensor=<sensor>/part-0.parquet

The Parquet files hold ``TS, Value, MinValue, MaxValue, Count``; ``Device`` and
``Sensor`` come from the path only, through the MLTable's
``extract_columns_from_partition_format`` step, which is what lets the Azure ML
parallel step use ``partition_keys: [Device, Sensor]`` (one mini-batch per pair).
Values are percent-encoded (:func:`scoring.schema.encode_partition_value`) when
they hold anything but ASCII letters, digits, ``-`` and ``_``: Azure ML's partition
parser rejects dots and slashes in a value. Azure ML hands such values to the entry
script still encoded; :func:`scoring.schema.decode_partition_value` undoes it.

Re-extracting into the same DIR replaces it as a whole: the new folder is built
beside it and swapped in, so a reader sees the old or the new extract, never a mix.
:func:`iter_partitions` reads a folder back one partition at a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.db import (
    DEFAULT_DB_URL,
    DatabaseError,
    iter_pair_readings,
    open_database,
    require_table,
    time_range,
)
from scoring.partition_reader import ExtractFolderError, read_partition_files
from scoring.progress import progress
from scoring.schema import (
    COUNT,
    DEVICE,
    MAX_VALUE,
    MIN_VALUE,
    PARTITION_KEYS,
    SENSOR,
    TS,
    VALUE,
    decode_partition_value,
    encode_partition_value,
)

log = logging.getLogger(__name__)

MLTABLE_FILE = "MLTable"
SUMMARY_FILE = "_extract.json"
PART_FILE = "part-0.parquet"
PARTITION_FORMAT = "/Device={Device}/Sensor={Sensor}/" + PART_FILE
DEFAULT_LOOKBACK_MINUTES = 60

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


# --------------------------------------------------------------------------- writing


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


def _write_partition(root: Path, device: str, sensor: str, rows: pd.DataFrame) -> Path:
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


def _swap_into(built: Path, target: Path) -> None:
    """Replace ``target`` by ``built``: two renames when possible, a copy otherwise.

    The copy is the fallback for a target that cannot be renamed, such as the
    mounted output folder of an Azure ML job (a fresh, empty folder there).
    """
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        if target.exists():
            os.rename(target, old)
        try:
            os.rename(built, target)
        except OSError:
            if old.exists():
                os.rename(old, target)
            raise
    except OSError:
        for child in list(target.iterdir()) if target.exists() else []:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copytree(built, target, dirs_exist_ok=True)
        shutil.rmtree(built, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _new_build_folder(target: Path) -> Path:
    """An empty sibling folder (permissions from the umask, unlike ``mkdtemp``'s 0700)."""
    for parent in (target.parent, Path(tempfile.gettempdir())):
        folder = parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            folder.mkdir()
            return folder
        except OSError:  # parent not writable (e.g. a mount point): build elsewhere, copy in
            continue
    raise OSError(f"{target}: no writable place to build the extract")


def extract_window(
    engine, end: pd.Timestamp, lookback_minutes: int, output: Path
) -> dict[str, object]:
    """Write the readings with TS in (end - lookback, end] to ``output``; return the summary."""
    start = end - pd.Timedelta(minutes=lookback_minutes)
    output.parent.mkdir(parents=True, exist_ok=True)
    build = _new_build_folder(output)
    try:
        rows = partitions = 0
        pairs = iter_pair_readings(engine, start.to_pydatetime(), end.to_pydatetime())
        written: set[tuple[str, str]] = set()
        for device, sensor, frame in progress(pairs, desc="extracting", unit="pair", logger=log):
            _write_partition(build, device, sensor, frame)
            written.add((device, sensor))
            rows += len(frame)
        partitions = len(written)
        summary: dict[str, object] = {
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "window": "(window_start, window_end]",
            "lookback_minutes": lookback_minutes,
            "rows": rows,
            "partitions": partitions,
            "partition_keys": list(PARTITION_KEYS),
            "partition_format": PARTITION_FORMAT,
        }
        (build / MLTABLE_FILE).write_text(MLTABLE_TEXT, encoding="utf-8")
        (build / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        _swap_into(build, output)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return summary


# --------------------------------------------------------------------------- reading


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


def read_partition(partition: Partition) -> pd.DataFrame:
    """The rows of one partition with Device and Sensor added from its path.

    Columns: TS, Device, Sensor, Value, then the rest, as Azure ML's tabular
    mini-batch for this partition would carry them. Raises
    :class:`ExtractFolderError` naming the file that cannot be read.
    """
    return read_partition_files(partition.files, partition.keys)


def iter_partitions(folder: str | Path) -> Iterator[tuple[dict[str, str], pd.DataFrame]]:
    """Yield ``(partition key dict, rows)`` per partition, in (Device, Sensor) order.

    Memory-light: one partition is read at a time. Key values are exact strings
    ("001" stays "001"). For per-partition error handling or to hand partitions to
    worker processes, use :func:`list_partitions` and :func:`read_partition`.
    """
    for partition in list_partitions(folder):
        yield partition.keys, read_partition(partition)


def read_summary(folder: str | Path) -> dict[str, object]:
    path = Path(folder) / SUMMARY_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExtractFolderError(f"{path}: cannot read the extract summary ({exc})") from exc


# --------------------------------------------------------------------------- command


def parse_end(text: str, engine=None) -> pd.Timestamp:
    """``--end``: an ISO 8601 timestamp (aware ones converted to naive UTC), ``now``, or
    ``latest`` (the last TS in the table)."""
    from scoring.cli import UsageError

    lowered = text.strip().lower()
    if lowered == "latest":
        _, last = time_range(engine)
        if last is None:
            raise UsageError("--end latest: the SensorReadings table is empty")
        return pd.Timestamp(last)
    try:
        end = pd.Timestamp.now(tz="UTC") if lowered == "now" else pd.Timestamp(text)
    except ValueError as exc:
        raise UsageError(f"--end {text!r} is not an ISO 8601 timestamp, 'now' or 'latest'") from exc
    if end is pd.NaT:
        raise UsageError(f"--end {text!r} is not an ISO 8601 timestamp, 'now' or 'latest'")
    if end.tzinfo is not None:
        end = end.tz_convert("UTC").tz_localize(None)
    return end


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=DEFAULT_DB_URL,
        help=f"SQLAlchemy database URL (default: {DEFAULT_DB_URL}, in the current folder)",
    )
    parser.add_argument(
        "--end",
        required=True,
        help="window end: ISO 8601 (naive = UTC), 'now', or 'latest' (the table's last TS)",
    )
    parser.add_argument(
        "--lookback-minutes",
        type=int,
        default=DEFAULT_LOOKBACK_MINUTES,
        help=f"window length: TS in (end - lookback, end] (default {DEFAULT_LOOKBACK_MINUTES})",
    )
    parser.add_argument(
        "--output", type=Path, required=True, help="extract folder (replaced as a whole)"
    )


def run(args: argparse.Namespace) -> int:
    from scoring.cli import UsageError

    if args.lookback_minutes < 1:
        raise UsageError("--lookback-minutes must be at least 1")
    output: Path = args.output
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not looks_like_extract(output):
        raise UsageError(
            f"--output {output}: a non-empty folder that is not an extract; refusing to replace it"
        )
    try:
        engine = open_database(args.db)
        require_table(engine)
    except DatabaseError as exc:
        raise UsageError(f"--db {exc}") from exc
    try:
        end = parse_end(args.end, engine)
        summary = extract_window(engine, end, args.lookback_minutes, output)
    finally:
        engine.dispose()
    if not summary["partitions"]:
        log.warning(
            "no readings with TS in (%s, %s]: %s holds no partitions",
            summary["window_start"],
            summary["window_end"],
            output,
        )
    log.info(
        "extracted %d rows in %d partitions for (%s, %s] into %s",
        summary["rows"],
        summary["partitions"],
        summary["window_start"],
        summary["window_end"],
        output,
    )
    return 0
