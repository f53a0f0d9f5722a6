"""The extract step: one scoring window of ``SensorReadings`` as an extract folder.

Readings with TS in (end - lookback, end] are written in the extract folder format
(:mod:`scoring.data.extract_folder`: hive partitions ``Device=/Sensor=``, an ``MLTable`` and
``_extract.json``). Run on Azure ML as ``python -m scoring.steps.extract`` and locally as
``batchscore extract`` (the same arguments).

Re-extracting into the same DIR replaces it as a whole: the new folder is built beside it
and swapped in, so a reader sees the old or the new extract, never a mix.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pandas as pd

from scoring.data.db import (
    DEFAULT_DB_URL,
    database,
    iter_pair_readings,
    time_range,
)
from scoring.data.extract_folder import (
    MLTABLE_FILE,
    MLTABLE_TEXT,
    PARTITION_FORMAT,
    SUMMARY_FILE,
    looks_like_extract,
    write_partition,
)
from scoring.data.schema import PARTITION_KEYS
from scoring.errors import UsageError
from scoring.progress import progress

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK_MINUTES = 60


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
            write_partition(build, device, sensor, frame)
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


# --------------------------------------------------------------------------- command


def parse_end(text: str, engine=None) -> pd.Timestamp:
    """``--end``: an ISO 8601 timestamp (aware ones converted to naive UTC), ``now``, or
    ``latest`` (the last TS in the table)."""
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
    if args.lookback_minutes < 1:
        raise UsageError("--lookback-minutes must be at least 1")
    output: Path = args.output
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not looks_like_extract(output):
        raise UsageError(
            f"--output {output}: a non-empty folder that is not an extract; refusing to replace it"
        )
    with database(args.db) as engine:
        end = parse_end(args.end, engine)
        summary = extract_window(engine, end, args.lookback_minutes, output)
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


def main(argv: list[str] | None = None) -> int:
    from scoring.steps import run_step

    return run_step("python -m scoring.steps.extract", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
