"""The score step's output folder: one Parquet part of predictions per mini-batch.

On Azure ML the parallel step runs in summary-only mode (no ``append_row_to``): its entry
script writes each mini-batch's predictions here itself, and ``run()`` returns one item per
input row only for the driver's accounting. Why not ``append_row``: that output is one text
file, space separated, headerless, in no order and delivered at least once, and its format can
be changed by a settings file beside the entry script; parsing it back loses rows silently when
anything differs. A part per mini-batch is typed (the contract's schema), named after its
mini-batch so a retry overwrites it (no duplicates), and written whole or not at all.

::

    DIR/
      part-<key>.parquet          the predictions of one mini-batch, one row per input row
      _failed/part-<key>.json     a mini-batch that raised: its keys, rows and reason
                                  (removed when a retry succeeds)

The publish step (:mod:`scoring.steps.publish`) reads it back, taking only this run's parts
(:func:`this_runs_parts`): a folder reused across runs (``--predictions-dir`` locally, a fixed
datastore path) still holds the parts of other windows, of older models, of a killed run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoring.data.files import atomic_path, write_json
from scoring.data.schema import PREDICTION_SCHEMA
from scoring.errors import RunFailed

PART_PREFIX = "part-"
FAILED_FOLDER = "_failed"


class ScoredFolderError(RunFailed):
    """A part cannot be read back, or does not have the contract's columns (names it)."""


def part_key(keys: Mapping[str, str] | None = None, source: str | None = None) -> str:
    """A stable name for a mini-batch: from its partition keys (pair mode) or its input file
    (shard mode). The same mini-batch gets the same name on every attempt."""
    text = json.dumps({"keys": dict(keys or {}), "source": source}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def write_part(folder: Path, key: str, table: pa.Table, describe: Mapping[str, object]) -> Path:
    """Write one mini-batch's predictions (replacing an earlier attempt's) and clear its failure
    marker. ``describe`` (its keys or source) goes into the file's metadata."""
    if not table.schema.equals(PREDICTION_SCHEMA):
        raise ScoredFolderError(f"part {key}: columns {table.schema.names} are not the contract's")
    table = table.replace_schema_metadata({b"batchscore.mini_batch": json.dumps(describe).encode()})
    target = folder / f"{PART_PREFIX}{key}.parquet"
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
    (folder / FAILED_FOLDER / f"{PART_PREFIX}{key}.json").unlink(missing_ok=True)
    return target


def write_failure(folder: Path, key: str, describe: Mapping[str, object], reason: str) -> Path:
    """Record that a mini-batch raised (the publish step reports it with its reason)."""
    return write_json(
        {**describe, "reason": reason}, folder / FAILED_FOLDER / f"{PART_PREFIX}{key}.json"
    )


def iter_parts(folder: Path) -> Iterator[tuple[Path, pa.Table]]:
    """Every part, in name order, as a table of the contract's schema."""
    for path in sorted(folder.glob(f"{PART_PREFIX}*.parquet")):
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise ScoredFolderError(f"{path}: not a readable predictions part ({exc})") from exc
        if table.schema.names != PREDICTION_SCHEMA.names:
            raise ScoredFolderError(
                f"{path}: columns {table.schema.names}, expected {PREDICTION_SCHEMA.names}"
            )
        yield path, table.cast(PREDICTION_SCHEMA)


def read_failures(folder: Path) -> list[dict[str, object]]:
    """The mini-batches that raised and were never retried successfully, with their reasons."""
    failures = []
    for path in sorted((folder / FAILED_FOLDER).glob(f"{PART_PREFIX}*.json")):
        try:
            failures.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            failures.append({"reason": f"unreadable failure record {path.name} ({exc})"})
    return failures


@dataclass
class RunParts:
    """The parts and failure records of one run, and the parts of other runs left aside."""

    tables: list[pa.Table] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    failures: list[dict[str, object]] = field(default_factory=list)
    #: ``{"part": name, "reason": why it is not this run's}``
    ignored: list[dict[str, str]] = field(default_factory=list)


def this_runs_parts(
    folder: Path, extracted_at: float | None, window_start: str, window_end: str
) -> RunParts:
    """The parts (and failure records) the score step wrote for this run's extract.

    A part is this run's when it was written no earlier than the extract it answers
    (``extracted_at``, the modification time of the extract's summary, written last: the score
    step reads the extract only once it is whole) and every time in it lies in the window
    ``(window_start, window_end]``. Anything else (another window's part, a killed or older
    run's part) is left aside and named with the reason.
    """
    found = RunParts()
    start, end = _naive_utc(window_start), _naive_utc(window_end)
    for path, table in iter_parts(folder):
        reason = _older_than(path, extracted_at) or _outside(table, start, end)
        if reason:
            found.ignored.append({"part": path.name, "reason": reason})
            continue
        found.tables.append(table)
        found.paths.append(path)
    for path in sorted((folder / FAILED_FOLDER).glob(f"{PART_PREFIX}*.json")):
        reason = _older_than(path, extracted_at)
        if reason:
            found.ignored.append({"part": f"{FAILED_FOLDER}/{path.name}", "reason": reason})
            continue
        try:
            found.failures.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            found.failures.append({"reason": f"unreadable failure record {path.name} ({exc})"})
    return found


def _older_than(path: Path, extracted_at: float | None) -> str | None:
    if extracted_at is None:
        return None
    try:
        written = path.stat().st_mtime
    except OSError:
        return None
    if written < extracted_at:
        return "written before this run's extract (a part of an earlier run)"
    return None


def _outside(table: pa.Table, start: pd.Timestamp, end: pd.Timestamp) -> str | None:
    times = table.column("TS")
    if times.null_count == len(times):
        return None
    first, last = pc.min(times).as_py(), pc.max(times).as_py()
    if pd.Timestamp(first) <= start or pd.Timestamp(last) > end:
        return f"rows from {first} to {last}, outside this run's window ({start}, {end}]"
    return None


def _naive_utc(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
