"""``batchscore aggregate``: raw readings into tumbling windows in the ``SensorReadings`` table
(the window rules are :mod:`batchscore.aggregate`; the SQL is :mod:`scoring.data.db`).

Prints one line: rows read, aggregated and rejected (per reason), windows written."""

from __future__ import annotations

import argparse
from pathlib import Path

from batchscore.aggregate import DEFAULT_WINDOW_MINUTES, describe, load_readings, merge_readings
from scoring import work_folder
from scoring.data.db import DEFAULT_DB_URL, database
from scoring.data.schema import TS
from scoring.errors import UsageError
from scoring.work_folder import READINGS_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        type=Path,
        default=READINGS_FILE,
        help=f"raw readings, .csv or .parquet (default: {READINGS_FILE}, where simulate writes)",
    )
    parser.add_argument(
        "--db",
        default=DEFAULT_DB_URL,
        help=f"SQLAlchemy database URL (default: {DEFAULT_DB_URL}, in the current folder)",
    )
    parser.add_argument(
        "--window-minutes",
        type=int,
        default=DEFAULT_WINDOW_MINUTES,
        help=f"tumbling window length in minutes (default: {DEFAULT_WINDOW_MINUTES})",
    )


def run(args: argparse.Namespace) -> int:
    if args.window_minutes < 1:
        raise UsageError("--window-minutes must be at least 1")
    if not args.input.exists():
        raise UsageError(work_folder.missing("--input", args.input, "no such file"))
    loaded = load_readings(args.input, args.window_minutes)
    with database(args.db, create=True) as engine:
        merged = merge_readings(engine, loaded.readings, args.window_minutes)
    windows = merged.windows
    print(
        f"{args.input}: {loaded.rows} row(s), {merged.readings_stored} aggregated "
        f"({merged.readings_replaced} given before), rejected: {describe(loaded)}; "
        f"{len(windows)} window(s) of {args.window_minutes} min written "
        f"({windows[TS].min()} .. {windows[TS].max()}; {merged.windows_replaced} replaced)"
    )
    return 0
