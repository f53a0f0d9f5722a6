"""The publish step: one run's predictions into ``window=<end>/`` under the predictions root.

``python -m scoring.steps.publish --scored DIR --extract DIR --out DIR [--summary-out DIR]``

The score step writes one Parquet part per mini-batch (:mod:`scoring.data.scored_parts`),
each answering every input row of its mini-batch, and a failure record per mini-batch that
raised. This step reads them back (typed: no text to parse), checks them against what the
extract step recorded (its window and row count), and writes

* ``window=<end as YYYYMMDDTHHMMSSZ>/predictions.parquet``: every row, the contract's columns
  and types (even when there are none), sorted by Device, Sensor, TS; a re-run of the same
  window replaces it (written beside, then swapped in);
* ``window=<end>/drift.parquet`` (with ``--models``): each pair's drift against its model's
  baseline (:mod:`scoring.steps.drift`);
* ``window=<end>/summary.json``: the window, rows extracted and published, rows per status,
  anomalies, the mini-batches that failed with their reasons, the pairs the extract could not
  write, the (Device, Sensor) pairs scored and failed with a reason per failed pair
  (:mod:`scoring.data.pair_outcomes`), the newest model version scored, the drifted pairs
  (a count and the worst), timings, and the run's outcome. The same summary goes to
  Application Insights as one event (:mod:`scoring.telemetry`; never failing the step),
  where the alert rules read it.

Timings: ``publish_seconds`` (this step), ``scoring_seconds`` (from the extract's summary
being written to the last predictions part: the score step with its queueing),
``latency_seconds`` (from the window's end to this summary: how late the predictions land).
The two file times come from the files' modification times (on Azure ML, the blobs' last
modified times through the mounts).

Model version: the publish step does not open the model store; ``model_version`` is the
newest ``ModelVersion`` among the scored rows (versions begin with their training time, so
the newest sorts last) and ``model_versions`` how many distinct versions scored.

Which parts: only this run's (:func:`scoring.data.scored_parts.this_runs_parts`): parts written
before the extract, or holding rows outside the window, are left aside and named in
``parts_ignored``.

Outcomes: ``succeeded`` (every extracted row came back, scored or with its status);
``incomplete`` (exit 1: rows did not come back, e.g. a failed mini-batch within the parallel
step's thresholds or a part cut short; the rows that did are published, the missing ones
counted in ``rows_missing`` and their pairs named in ``failed_pairs``); ``empty_window``
(exit 3 from ``batchscore publish``: the extract found no readings, an ingestion outage
should show, not pass as green); ``failed`` (exit 1, nothing published) when the extract had
rows and no prediction came back, or when more rows came back than went in.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoring.data import scored_parts
from scoring.data.extract_folder import SUMMARY_FILE as EXTRACT_SUMMARY_FILE
from scoring.data.extract_folder import read_summary
from scoring.data.files import atomic_path, require_output_folder, write_json
from scoring.data.pair_outcomes import pair_outcomes
from scoring.data.schema import (
    DEVICE,
    IS_ANOMALY,
    MODEL_VERSION,
    PREDICTION_SCHEMA,
    SENSOR,
    STATUS,
    STATUS_OK,
    TS,
)
from scoring.errors import EXIT_EMPTY, EXIT_OK, RunFailed, UsageError
from scoring.steps.drift import run_drift

log = logging.getLogger("scoring.steps.publish")

PREDICTIONS_FILE = "predictions.parquet"
SUMMARY_FILE = "summary.json"
KEY_COLUMNS = [TS, DEVICE, SENSOR]
SUCCEEDED, EMPTY_WINDOW, FAILED = "succeeded", "empty_window", "failed"
INCOMPLETE = "incomplete"
#: the Azure ML job's run id, where the step runs as one
RUN_ID_ENV = "AZUREML_RUN_ID"


@dataclass
class PublishSummary:
    """What ``summary.json`` beside a window's predictions says."""

    window: str
    window_start: str
    window_end: str
    status: str = SUCCEEDED
    failure: str | None = None
    rows_extracted: int = 0
    rows_published: int = 0
    rows_missing: int = 0
    duplicates_dropped: int = 0
    anomalies: int = 0
    rows_by_status: dict[str, int] = field(default_factory=dict)
    parts: int = 0
    failed_mini_batches: list[dict[str, object]] = field(default_factory=list)
    #: parts in the scored folder that are not this run's (another window, an earlier run)
    parts_ignored: list[dict[str, str]] = field(default_factory=list)
    pairs_not_extracted: list[dict[str, object]] = field(default_factory=list)
    pairs: int = 0
    pairs_scored: int = 0
    pairs_failed: int = 0
    #: pairs of which fewer rows came back than were extracted
    pairs_failed_rows: int = 0
    failed_pairs: list[dict[str, str]] = field(default_factory=list)
    model_version: str | None = None
    model_versions: int = 0
    # the drift of each pair against its model's baseline (scoring.steps.drift)
    drift_statistic: str | None = None
    drift_pairs: int | None = None
    drifted_pairs: int | None = None
    drift_unknown_pairs: int | None = None
    drift_worst: list[dict[str, Any]] = field(default_factory=list)
    drift_failure: str | None = None
    run_id: str | None = None
    timings: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PublishSummary:
        """A summary read back from ``summary.json`` (fields an older step did not write take
        their defaults; unknown ones are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def window_folder(window_end: str) -> str:
    """``window=YYYYMMDDTHHMMSSZ`` of a window end (ISO 8601; naive means UTC)."""
    try:
        stamp = pd.Timestamp(window_end)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"window end {window_end!r} is not an ISO 8601 time") from exc
    if pd.isna(stamp):
        raise UsageError(f"window end {window_end!r} is not an ISO 8601 time")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return f"window={stamp.strftime('%Y%m%dT%H%M%SZ')}"


def collect(tables: list[pa.Table]) -> tuple[pa.Table, int]:
    """The parts' rows, sorted by Device, Sensor, TS, one row per (TS, Device, Sensor);
    returns the table and how many duplicate rows were dropped."""
    table = pa.concat_tables(tables) if tables else PREDICTION_SCHEMA.empty_table()
    table = table.sort_by([(DEVICE, "ascending"), (SENSOR, "ascending"), (TS, "ascending")])
    if table.num_rows < 2:
        return table, 0
    keys = [table.column(name) for name in KEY_COLUMNS]
    same_as_next = pc.and_(
        pc.and_(
            pc.equal(keys[0].slice(1), keys[0].slice(0, table.num_rows - 1)),
            pc.equal(keys[1].slice(1), keys[1].slice(0, table.num_rows - 1)),
        ),
        pc.equal(keys[2].slice(1), keys[2].slice(0, table.num_rows - 1)),
    )
    keep = pa.concat_arrays(
        [pc.invert(pc.fill_null(same_as_next, False)).combine_chunks(), pa.array([True])]
    )
    kept = table.filter(keep)  # the last of equal keys: a row answered twice counts once
    return kept, table.num_rows - kept.num_rows


def publish(scored: Path, extract: Path, out: Path, models: Path | None = None) -> PublishSummary:
    """Write ``out/window=<end>/`` from the score step's parts; raises :class:`RunFailed` (and
    publishes nothing) when no prediction came back for a window with readings."""
    started = time.monotonic()
    extracted = read_summary(extract)
    end = str(extracted["window_end"])
    parts = scored_parts.this_runs_parts(
        scored,
        _modified(extract / EXTRACT_SUMMARY_FILE),
        str(extracted["window_start"]),
        end,
    )
    summary = PublishSummary(
        window=window_folder(end),
        window_start=str(extracted["window_start"]),
        window_end=end,
        rows_extracted=int(extracted.get("rows", 0)),
        pairs_not_extracted=list(extracted.get("skipped_pairs") or []),
        failed_mini_batches=parts.failures,
        parts_ignored=parts.ignored,
        run_id=os.environ.get(RUN_ID_ENV) or None,
    )
    for ignored in parts.ignored:
        log.warning("not this run's: %s (%s)", ignored["part"], ignored["reason"])
    table, summary.duplicates_dropped = collect(parts.tables)
    summary.parts = len(parts.tables)
    summary.rows_published = table.num_rows
    summary.rows_missing = max(0, summary.rows_extracted - table.num_rows)
    statuses = Counter(table.column(STATUS).to_pylist())
    summary.rows_by_status = dict(sorted(statuses.items()))
    summary.anomalies = int(pc.sum(table.column(IS_ANOMALY)).as_py() or 0)
    _count_pairs(summary, extract, table)
    _model_versions(summary, table)
    if summary.rows_extracted and not table.num_rows:
        summary.status = FAILED
        summary.failure = (
            f"the extract holds {summary.rows_extracted} rows and no prediction came back "
            f"({len(summary.failed_mini_batches)} failed mini-batches)"
        )
    elif table.num_rows > summary.rows_extracted:
        summary.status = FAILED
        summary.failure = (
            f"{table.num_rows} predictions for {summary.rows_extracted} extracted rows: the "
            "scored folder holds rows of another run"
        )
    elif not summary.rows_extracted:
        summary.status = EMPTY_WINDOW
    elif summary.rows_missing or summary.pairs_failed_rows:
        summary.status = INCOMPLETE
        summary.failure = (
            f"{summary.rows_missing} of {summary.rows_extracted} extracted rows did not come back "
            f"({summary.pairs_failed_rows} pair(s) short, "
            f"{len(summary.failed_mini_batches)} failed mini-batches); the "
            f"{summary.rows_published} that did are published"
        )
    target = out / summary.window
    if summary.status != FAILED:
        with atomic_path(target / PREDICTIONS_FILE) as tmp:
            pq.write_table(table, tmp)
        for name, value in asdict(run_drift(table, models, target)).items():
            setattr(summary, name, value)
    summary.timings = _timings(summary.window_end, extract, parts.paths, started)
    write_json(asdict(summary), target / SUMMARY_FILE)
    return summary


def _count_pairs(summary: PublishSummary, extract: Path, table: pa.Table) -> None:
    outcomes = pair_outcomes(
        extract, table, summary.failed_mini_batches, summary.pairs_not_extracted
    )
    summary.pairs, summary.pairs_scored = outcomes.pairs, outcomes.scored
    summary.pairs_failed = len(outcomes.failed)
    summary.pairs_failed_rows = outcomes.short
    summary.failed_pairs = outcomes.listed()


def _model_versions(summary: PublishSummary, table: pa.Table) -> None:
    scored = table.filter(pc.equal(table.column(STATUS), STATUS_OK)).column(MODEL_VERSION)
    versions = [v for v in pc.unique(scored).to_pylist() if v]
    summary.model_versions = len(versions)
    summary.model_version = max(versions) if versions else None


def _timings(
    window_end: str, extract: Path, part_paths: list[Path], started: float
) -> dict[str, object]:
    """See the module docstring; a time that cannot be known is None."""
    now = datetime.now(UTC)
    extracted_at = _modified(extract / EXTRACT_SUMMARY_FILE)
    parts = [_modified(p) for p in part_paths]
    last_part = max((t for t in parts if t is not None), default=None)
    end = pd.Timestamp(window_end)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    return {
        "published_at": now.isoformat(timespec="seconds"),
        "publish_seconds": round(time.monotonic() - started, 3),
        "scoring_seconds": round(last_part - extracted_at, 3)
        if last_part is not None and extracted_at is not None
        else None,
        "latency_seconds": round(now.timestamp() - end.timestamp(), 3),
    }


def _modified(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scored", required=True, type=Path, help="the score step's output")
    parser.add_argument("--extract", required=True, type=Path, help="the extract step's output")
    parser.add_argument("--out", required=True, type=Path, help="predictions root")
    parser.add_argument(
        "--summary-out", type=Path, help="also write the run's summary.json into this folder"
    )
    parser.add_argument(
        "--models",
        type=Path,
        help="the model store that scored the run: each pair's drift against its model's "
        "baseline goes to drift.parquet and the summary (without it, no drift is computed)",
    )


def run(args: argparse.Namespace) -> int:
    from scoring.telemetry import emit_run_summary

    if not args.scored.is_dir():
        raise UsageError(f"--scored {args.scored}: not a folder")
    if not args.extract.is_dir():
        raise UsageError(f"--extract {args.extract}: not a folder")
    require_output_folder("--out", args.out)
    if args.summary_out is not None:
        require_output_folder("--summary-out", args.summary_out)
    if args.models is not None and not args.models.is_dir():
        raise UsageError(f"--models {args.models}: not a folder")
    summary = publish(args.scored, args.extract, args.out, args.models)
    if args.summary_out is not None:
        write_json(asdict(summary), args.summary_out / SUMMARY_FILE)
    emit_run_summary(asdict(summary))  # never raises: telemetry cannot fail the run
    line = json.dumps(asdict(summary), default=str)
    if summary.status in (FAILED, INCOMPLETE):
        raise RunFailed(
            f"publish of {summary.window} {summary.status}: {summary.failure}; summary: {line}"
        )
    log.info("published %s: %s", summary.window, line)
    return EXIT_EMPTY if summary.status == EMPTY_WINDOW else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """The step as Azure ML runs it. An empty window exits 0 here: a non-zero exit fails the
    pipeline job, and an empty window is not a failed run (its summary and event say
    ``empty_window``, which the empty-window alert reads); ``batchscore publish`` exits 3."""
    from scoring.steps import run_step

    code = run_step("python -m scoring.steps.publish", __doc__, add_arguments, run, argv)
    return EXIT_OK if code == EXIT_EMPTY else code


if __name__ == "__main__":
    raise SystemExit(main())
