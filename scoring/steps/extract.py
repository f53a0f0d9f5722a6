"""The extract step: one scoring window of ``SensorReadings`` as an extract folder.

Readings with TS in (end - lookback, end] are written in the extract folder format
(:mod:`scoring.data.extract_folder`: shards of whole pairs, or a folder per pair; an
``MLTable`` and ``_extract.json``). Run on Azure ML as ``python -m scoring.steps.extract``
and locally as ``batchscore extract`` (the same arguments).

Re-extracting into the same DIR replaces it as a whole: the new folder is built beside it
and swapped in, so a reader sees the old or the new extract, never a mix.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from scoring import partitioning
from scoring.data.db import (
    DEFAULT_DB_URL,
    database,
    iter_pair_readings,
    iter_window_chunks,
    time_range,
)
from scoring.data.extract_folder import (
    LAYOUT_KEYS,
    LAYOUTS,
    SHARD_LAYOUT,
    finish_extract,
    looks_like_extract,
    partition_format,
    write_partitions,
    write_shards_of_chunks,
)
from scoring.data.files import require_output_folder
from scoring.errors import UsageError
from scoring.progress import progress
from scoring.work_folder import EXTRACT_FOLDER

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK_MINUTES = 60
#: rows a shard holds (whole pairs, so a little more): ~10 MB of Parquet, a few hundred
#: milliseconds of a worker; an hourly run of 100,000 pairs (12 rows each) is 6 shards
DEFAULT_SHARD_ROWS = partitioning.DEFAULT_SHARD_ROWS


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
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--output {target}: cannot create its folder ({exc})") from exc
    for parent in (target.parent, Path(tempfile.gettempdir())):
        folder = parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            folder.mkdir()
            return folder
        except OSError:  # parent not writable (e.g. a mount point): build elsewhere, copy in
            continue
    raise UsageError(f"--output {target}: no writable place to build the extract")


def extract_window(
    engine,
    end: pd.Timestamp,
    lookback_minutes: int,
    output: Path,
    *,
    layout: str = SHARD_LAYOUT,
    shard_rows: int = DEFAULT_SHARD_ROWS,
) -> dict[str, object]:
    """Write the readings with TS in (end - lookback, end] to ``output`` in ``layout`` (whole
    pairs in shards of about ``shard_rows`` rows, or a folder per pair); return the summary."""
    start = end - pd.Timedelta(minutes=lookback_minutes)
    build = _new_build_folder(output)
    try:
        window = (start.to_pydatetime(), end.to_pydatetime())
        if layout == SHARD_LAYOUT:  # columnar: chunks of whole pairs, never a frame per pair
            chunks = iter_window_chunks(engine, *window, chunk_rows=shard_rows)
            chunks = progress(chunks, desc="extracting", unit="chunk", logger=log)
            written = write_shards_of_chunks(build, chunks, shard_rows)
        else:
            pairs = iter_pair_readings(engine, *window)
            pairs = progress(pairs, desc="extracting", unit="pair", logger=log)
            written = write_partitions(build, pairs, layout, shard_rows)
        summary: dict[str, object] = {
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "window": "(window_start, window_end]",
            "lookback_minutes": lookback_minutes,
            "layout": layout,
            "rows": written.rows,
            "partitions": len(written.rows_by_folder),
            "partition_keys": list(LAYOUT_KEYS[layout]),
            "partition_format": partition_format(layout),
            "skipped_pairs": written.skipped,
        }
        if layout == SHARD_LAYOUT:
            summary["shard_rows"] = shard_rows
        finish_extract(build, written, layout, summary)
        try:
            _swap_into(build, output)
        except OSError as exc:
            raise UsageError(f"--output {output}: cannot write the extract there ({exc})") from exc
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return summary


_UNSUBSTITUTED = "${{"


def parse_end(text: str, engine=None, time_zone: str = "UTC") -> pd.Timestamp:
    """``--end``: an ISO 8601 timestamp, ``now``, or ``latest`` (the last TS in the table), as
    naive UTC. A timestamp with an offset is converted; a naive one is read in ``time_zone``
    (the schedule's, where Azure ML renders times without an offset)."""
    if _UNSUBSTITUTED in text:
        raise UsageError(
            f"--end {text!r} was never filled in: Azure ML substitutes "
            "${{creation_context.trigger_time}} only in runs its schedule creates; run the job "
            "with trigger_time set to a time or 'now' (`batchscore pipeline run` does)"
        )
    lowered = text.strip().lower()
    if lowered == "latest":
        if engine is None:
            raise UsageError("--end latest needs the database; resolve it where the table is")
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
    if end.tzinfo is None:
        end = _localized(end, text, time_zone)
    return end.tz_convert("UTC").tz_localize(None)


def check_end(text: str, time_zone: str = "UTC") -> str:
    """``text`` when it is a window end the extract step will accept (ISO 8601, ``now``, or
    ``latest``, which only the step itself resolves against its table); a usage error naming it
    otherwise. For commands that pass the end on to a run (``batchscore pipeline``)."""
    if text.strip().lower() != "latest":
        parse_end(text, None, time_zone)
    return text


def _localized(end: pd.Timestamp, text: str, time_zone: str) -> pd.Timestamp:
    """A wall-clock time read in ``time_zone``; one that the zone's clock shows twice (the hour
    repeated when daylight saving ends) or never (the hour skipped when it starts) is refused,
    naming the candidates: a window end must be one instant, and guessing would score the
    wrong hour silently."""
    zone = zone_info(time_zone)
    try:
        return end.tz_localize(zone)
    except ValueError as exc:  # pandas' AmbiguousTimeError / NonExistentTimeError
        if "ambiguous" in type(exc).__name__.lower() or "ambiguous" in str(exc).lower():
            first = end.tz_localize(zone, ambiguous=True).tz_convert("UTC")
            second = end.tz_localize(zone, ambiguous=False).tz_convert("UTC")
            raise UsageError(
                f"--end {text!r} is ambiguous in {time_zone}: that wall-clock time happens "
                f"twice (daylight saving ends), at {first:%Y-%m-%dT%H:%M:%SZ} and "
                f"{second:%Y-%m-%dT%H:%M:%SZ}; give it with an offset or in UTC"
            ) from None
        raise UsageError(
            f"--end {text!r} does not exist in {time_zone}: the clock skips that hour "
            "(daylight saving starts); give it with an offset or in UTC"
        ) from None


def zone_info(name: str) -> ZoneInfo:
    """A time zone by IANA name or by the Windows name Azure ML schedules use (the CLDR mapping
    as the tzlocal package keeps it)."""
    from tzlocal.windows_tz import win_tz

    try:
        return ZoneInfo(win_tz.get(name, name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"--time-zone {name!r} is neither a Windows time zone name (as Azure ML schedules "
            "use, e.g. 'W. Europe Standard Time') nor an IANA one (e.g. Europe/Berlin)"
        ) from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=DEFAULT_DB_URL,
        help=f"SQLAlchemy database URL (default: {DEFAULT_DB_URL}, in the current folder)",
    )
    parser.add_argument(
        "--end",
        required=True,
        help="window end: ISO 8601, 'now', or 'latest' (the table's last TS); without an offset "
        "it is read in --time-zone",
    )
    parser.add_argument(
        "--time-zone",
        default="UTC",
        help="zone of an --end without offset: a Windows name as Azure ML schedules use "
        "('W. Europe Standard Time') or an IANA name (default: UTC)",
    )
    parser.add_argument(
        "--lookback-minutes",
        type=int,
        default=DEFAULT_LOOKBACK_MINUTES,
        help=f"window length: TS in (end - lookback, end] (default {DEFAULT_LOOKBACK_MINUTES})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=EXTRACT_FOLDER,
        help=f"extract folder, replaced as a whole (default: {EXTRACT_FOLDER})",
    )
    parser.add_argument(
        "--partitioning",
        choices=LAYOUTS,
        default=SHARD_LAYOUT,
        help="shard: whole pairs in files of about --shard-rows rows, scored many pairs per "
        "mini-batch (default); pair: a folder per (Device, Sensor), one mini-batch each",
    )
    parser.add_argument(
        "--shard-rows",
        type=int,
        default=DEFAULT_SHARD_ROWS,
        help="rows per shard, whole pairs (default %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    if args.lookback_minutes < 1:
        raise UsageError("--lookback-minutes must be at least 1")
    output: Path = args.output
    require_output_folder("--output", output)
    if output.is_dir() and any(output.iterdir()) and not looks_like_extract(output):
        raise UsageError(
            f"--output {output}: a non-empty folder that is not an extract; refusing to replace it"
        )
    if args.shard_rows < 1:
        raise UsageError(f"--shard-rows {args.shard_rows}: must be at least 1")
    zone_info(args.time_zone)  # a bad zone is a usage error before any database work
    if args.end.strip().lower() != "latest":  # and so is a bad --end
        parse_end(args.end, None, args.time_zone)
    with database(args.db) as engine:
        end = parse_end(args.end, engine, args.time_zone)
        summary = extract_window(
            engine,
            end,
            args.lookback_minutes,
            output,
            layout=args.partitioning,
            shard_rows=args.shard_rows,
        )
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
