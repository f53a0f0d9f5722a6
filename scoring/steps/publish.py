"""The pipeline's publish step: one run's predictions into ``window=<end>/predictions.parquet``.

``python -m scoring.steps.publish --scored DIR --trigger-time T --out DIR``

The parallel step's ``append_row_to`` output is one or more text files of rows, space
separated, values quoted where needed, usually without a header, delivered at least once
(a retried mini-batch appends its rows again) and in no particular order. This step parses
them in the prediction column order (``TS Device Sensor Value Score IsAnomaly ModelVersion``),
keeps the last row of each (TS, Device, Sensor), and writes one Parquet file per window,
replacing the file of an earlier run of the same window. A line it cannot parse is logged with
its file and line number and skipped; everything else is kept. ``summary.json`` beside the
Parquet file counts rows read, malformed, duplicates dropped and written.

Runs in the scoring image: pandas and pyarrow only (no azure-ai-ml).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from scoring.data.files import write_json, write_table
from scoring.data.schema import (
    DEVICE,
    IS_ANOMALY,
    MODEL_VERSION,
    PREDICTION_COLUMNS,
    SCORE,
    SENSOR,
    TS,
    VALUE,
    empty_predictions,
)
from scoring.errors import UsageError

log = logging.getLogger("scoring.steps.publish")

PREDICTIONS_FILE = "predictions.parquet"
SUMMARY_FILE = "summary.json"
KEY_COLUMNS = [TS, DEVICE, SENSOR]


@dataclass
class PublishSummary:
    window: str
    files: int = 0
    rows_read: int = 0
    malformed: int = 0
    duplicates_dropped: int = 0
    rows_written: int = 0


def window_folder(trigger_time: str) -> str:
    """``window=YYYYMMDDTHHMMSSZ`` of a trigger time (ISO 8601; naive means UTC)."""
    try:
        stamp = pd.Timestamp(trigger_time)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--trigger-time {trigger_time!r} is not an ISO 8601 time") from exc
    if pd.isna(stamp):
        raise UsageError(f"--trigger-time {trigger_time!r} is not an ISO 8601 time")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return f"window={stamp.strftime('%Y%m%dT%H%M%SZ')}"


def read_appended_rows(scored: Path) -> tuple[pd.DataFrame, PublishSummary]:
    """Every parseable row of the append_row files under ``scored``."""
    summary = PublishSummary(window="")
    records: list[list[str]] = []
    files = sorted(p for p in scored.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        summary.files += 1
        with path.open(encoding="utf-8", newline="") as handle:
            for line_no, fields in enumerate(csv.reader(handle, delimiter=" ", quotechar='"'), 1):
                fields = [f for f in fields if f != ""]
                if not fields or fields[0] == TS:  # blank line or a header line
                    continue
                summary.rows_read += 1
                row = _as_prediction(fields)
                if row is None:
                    summary.malformed += 1
                    log.warning(
                        "%s line %d: expected %d fields (%s), got %d: %.200s; skipped",
                        path.name,
                        line_no,
                        len(PREDICTION_COLUMNS),
                        " ".join(PREDICTION_COLUMNS),
                        len(fields),
                        " ".join(fields),
                    )
                    continue
                records.append(row)
    frame = pd.DataFrame(records, columns=list(PREDICTION_COLUMNS))
    frame, bad = _typed(frame)
    summary.malformed += bad
    return frame, summary


def publish(scored: Path, trigger_time: str, out: Path) -> PublishSummary:
    """Write ``out/window=<end>/predictions.parquet`` (replacing) and its summary."""
    folder = window_folder(trigger_time)
    frame, summary = read_appended_rows(scored)
    summary.window = folder
    before = len(frame)
    frame = frame.drop_duplicates(subset=KEY_COLUMNS, keep="last")
    summary.duplicates_dropped = before - len(frame)
    frame = frame.sort_values([DEVICE, SENSOR, TS]).reset_index(drop=True)
    summary.rows_written = len(frame)
    target = out / folder
    target.mkdir(parents=True, exist_ok=True)
    # Written beside, then replaced: a reader never sees half a file, and a re-run of the
    # window overwrites the earlier run's file instead of adding a second one.
    write_table(frame, target / PREDICTIONS_FILE)
    write_json(asdict(summary), target / SUMMARY_FILE)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scored", required=True, type=Path, help="the score step's output")
    parser.add_argument("--trigger-time", required=True, help="window end (ISO 8601)")
    parser.add_argument("--out", required=True, type=Path, help="predictions root")


def run(args: argparse.Namespace) -> int:
    if not args.scored.is_dir():
        raise UsageError(f"--scored {args.scored}: not a folder")
    summary = publish(args.scored, args.trigger_time, args.out)
    log.info("published %s", json.dumps(asdict(summary)))
    return 0


def main(argv: list[str] | None = None) -> int:
    from scoring.steps import run_step

    return run_step("python -m scoring.steps.publish", __doc__, add_arguments, run, argv)


def _as_prediction(fields: list[str]) -> list[str] | None:
    expected = len(PREDICTION_COLUMNS)
    if len(fields) == expected + 1 and _looks_like_time(fields[1]):
        # An unquoted "YYYY-MM-DD HH:MM:SS" timestamp arrives as two fields.
        fields = [f"{fields[0]} {fields[1]}", *fields[2:]]
    return fields if len(fields) == expected else None


def _looks_like_time(text: str) -> bool:
    parts = text.split(":")
    return len(parts) == 3 and all(p.replace(".", "", 1).isdigit() for p in parts)


def _typed(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Columns in their contract types; rows that do not convert are counted and dropped."""
    if frame.empty:
        return empty_predictions(), 0
    ts = pd.to_datetime(frame[TS], errors="coerce", utc=True).dt.tz_localize(None)
    value = pd.to_numeric(frame[VALUE], errors="coerce")
    score = pd.to_numeric(frame[SCORE], errors="coerce")
    flag = pd.to_numeric(frame[IS_ANOMALY], errors="coerce")
    ok = ts.notna() & score.notna() & flag.isin([0, 1])
    bad = int((~ok).sum())
    if bad:
        log.warning("%d row(s) with an unreadable TS, Score or IsAnomaly; skipped", bad)
    typed = pd.DataFrame(
        {
            TS: ts[ok],
            DEVICE: frame.loc[ok, DEVICE].astype("string"),
            SENSOR: frame.loc[ok, SENSOR].astype("string"),
            VALUE: value[ok].astype("float64"),
            SCORE: score[ok].astype("float64"),
            IS_ANOMALY: flag[ok].astype("int64"),
            MODEL_VERSION: frame.loc[ok, MODEL_VERSION].astype("string"),
        }
    )
    return typed.reset_index(drop=True), bad


if __name__ == "__main__":
    sys.exit(main())
