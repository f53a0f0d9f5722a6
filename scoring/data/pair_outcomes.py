"""Which (Device, Sensor) pairs of a run's window were scored, and why the others were not.

A pair counts as **failed** when none of its rows came back scored (``Status == ok``), or when
fewer of its rows came back than the extract holds (a part cut short: "N of M rows came back"):

* its mini-batch raised and was never retried successfully (a pair folder in pair mode, a
  whole shard in shard mode): the reason is the mini-batch's failure record;
* it came back, but no row of it was scored (no model, a model error, only invalid values):
  the reason counts its rows per status;
* nothing came back for it and no failure was recorded (a killed worker): "no prediction";
* the extract could not write it at all (``skipped_pairs`` of ``_extract.json``).

The pairs of a window are read from the extract itself (folder names in pair mode, the
Device and Sensor columns of each shard in shard mode), so a failed shard still names every
pair it held. The publish step puts the counts and the first :data:`MAX_LISTED` failed pairs
into the run's summary; the failed-pairs alert reads the counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scoring.data.extract_folder import (
    EMPTY_WINDOW_VALUE,
    SHARD_LAYOUT,
    Partition,
    layout_of,
    list_partitions,
    read_index,
)
from scoring.data.schema import DEVICE, SENSOR, STATUS, STATUS_OK

#: failed pairs listed by name in a summary (the count is always exact)
MAX_LISTED = 100

Pair = tuple[str, str]


@dataclass
class PairOutcomes:
    """The pairs of one window: how many, how many scored, the failed ones with a reason."""

    pairs: int = 0
    scored: int = 0
    failed: dict[Pair, str] = field(default_factory=dict)
    #: pairs of which fewer rows came back than were extracted
    short: int = 0

    def listed(self, limit: int = MAX_LISTED) -> list[dict[str, str]]:
        """The first ``limit`` failed pairs, sorted, as ``{device, sensor, reason}``."""
        return [
            {"device": device, "sensor": sensor, "reason": reason}
            for (device, sensor), reason in sorted(self.failed.items())[:limit]
        ]


def pairs_by_partition(extract: Path) -> dict[tuple[tuple[str, str], ...], set[Pair]]:
    """Partition keys (raw, as a mini-batch's failure record holds them) -> its pairs."""
    return {key: set(rows) for key, rows in _rows_by_partition(extract).items()}


def _rows_by_partition(extract: Path) -> dict[tuple[tuple[str, str], ...], dict[Pair, int]]:
    """Partition keys -> {pair: rows the extract holds for it}."""
    shard = layout_of(extract) == SHARD_LAYOUT
    recorded = {} if shard else read_index(extract)  # a folder per pair: its rows recorded
    found: dict[tuple[tuple[str, str], ...], dict[Pair, int]] = {}
    for partition in list_partitions(extract):
        rows = _shard_pairs(partition) if shard else _folder_pair(partition, recorded)
        if rows:
            found[_key(partition.keys)] = rows
    return found


def pair_outcomes(
    extract: Path,
    published: pa.Table,
    failed_mini_batches: Iterable[Mapping[str, object]],
    not_extracted: Iterable[Mapping[str, object]],
) -> PairOutcomes:
    """Classify every pair of the window (see the module docstring)."""
    rows_by_partition = _rows_by_partition(extract)
    by_partition = {key: set(rows) for key, rows in rows_by_partition.items()}
    extracted: dict[Pair, int] = {}
    for rows in rows_by_partition.values():
        for pair, count in rows.items():
            extracted[pair] = extracted.get(pair, 0) + count
    window: set[Pair] = set(extracted)
    statuses = _statuses_per_pair(published)
    scored = {pair for pair, counts in statuses.items() if counts.get(STATUS_OK)}
    failed: dict[Pair, str] = {}
    short = 0
    for pair, expected in sorted(extracted.items()):
        came_back = sum(statuses.get(pair, {}).values())
        if 0 < came_back < expected:
            short += 1
            failed[pair] = f"{came_back} of {expected} rows came back"
            scored.discard(pair)
    for record in failed_mini_batches:
        keys = record.get("keys")
        members = by_partition.get(_key(keys), set()) if isinstance(keys, Mapping) else set()
        for pair in members - scored:
            failed[pair] = f"mini-batch failed: {record.get('reason', 'no reason recorded')}"
    for pair in sorted(window - scored - set(failed)):
        counts = statuses.get(pair)
        if counts:
            shown = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
            failed[pair] = f"no row scored ({shown})"
        else:
            failed[pair] = "no prediction came back and no failure was recorded"
    for skipped in not_extracted:
        pair = (str(skipped.get("device")), str(skipped.get("sensor")))
        failed[pair] = f"not extracted: {skipped.get('reason', 'no reason recorded')}"
    return PairOutcomes(
        pairs=len(window | set(failed)), scored=len(scored), failed=failed, short=short
    )


def _key(keys: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in keys.items()))


def _folder_pair(partition: Partition, recorded: Mapping[str, int]) -> dict[Pair, int]:
    """The pair of a folder and its rows: as the extract's index recorded them (one file read
    for all pairs), else from its files' footers."""
    if partition.keys.get(DEVICE) == EMPTY_WINDOW_VALUE:
        return {}  # the marker partition of an empty window
    rows = recorded.get(partition.relative_folder)
    if rows is None:
        rows = sum(pq.ParquetFile(str(f)).metadata.num_rows for f in partition.files)
    try:
        return {(partition.device, partition.sensor): rows}
    except ValueError:  # a folder no encoder wrote: name it as it is
        return {(partition.keys[DEVICE], partition.keys[SENSOR]): rows}


def _shard_pairs(partition: Partition) -> dict[Pair, int]:
    table = pq.read_table([str(f) for f in partition.files], columns=[DEVICE, SENSOR])
    counted = table.group_by([DEVICE, SENSOR]).aggregate([([], "count_all")])
    rows = dict(
        zip(
            zip(
                counted.column(DEVICE).to_pylist(),
                counted.column(SENSOR).to_pylist(),
                strict=True,
            ),
            counted.column("count_all").to_pylist(),
            strict=True,
        )
    )
    rows.pop((EMPTY_WINDOW_VALUE, EMPTY_WINDOW_VALUE), None)  # an empty window's marker row
    return rows


def _statuses_per_pair(published: pa.Table) -> dict[Pair, dict[str, int]]:
    """(Device, Sensor) -> {status: rows} of the published predictions."""
    if not published.num_rows:
        return {}
    counts = published.select([DEVICE, SENSOR, STATUS]).group_by([DEVICE, SENSOR, STATUS])
    counted = counts.aggregate([([], "count_all")])
    found: dict[Pair, dict[str, int]] = {}
    for device, sensor, status, rows in zip(
        counted.column(DEVICE).to_pylist(),
        counted.column(SENSOR).to_pylist(),
        counted.column(STATUS).to_pylist(),
        counted.column("count_all").to_pylist(),
        strict=True,
    ):
        found.setdefault((device, sensor), {})[str(status)] = int(rows)
    return found
