"""``batchscore simulate``: raw sensor readings with injected anomalies, to a file and/or Event
Hubs (the generator is :mod:`batchscore.simulate`)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import pandas as pd

from batchscore.simulate import DEFAULT_START, SimulationConfig, simulate_readings
from scoring.data.files import TableFormatError, require_output_file, table_kind, write_table
from scoring.data.schema import DEVICE, INJECTED_ANOMALY, SENSOR, TS, VALUE
from scoring.errors import UsageError
from scoring.work_folder import READINGS_FILE

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SimulationConfig()
    parser.add_argument("--devices", type=int, default=defaults.devices, help="devices (10)")
    parser.add_argument(
        "--sensors", type=int, default=defaults.sensors, help="sensors per device (4)"
    )
    parser.add_argument(
        "--hours", type=float, default=defaults.hours, help="hours of readings (24)"
    )
    parser.add_argument(
        "--interval-seconds",
        type=int,
        default=defaults.interval_seconds,
        help="seconds between two readings of one sensor (60)",
    )
    parser.add_argument(
        "--anomaly-rate",
        type=float,
        default=defaults.anomaly_rate,
        help="share of readings that are injected anomalies (0.01)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (42)")
    parser.add_argument(
        "--start",
        default=DEFAULT_START,
        help=f"time of the first reading, ISO 8601, naive = UTC ({DEFAULT_START})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where to write the readings, .csv or .parquet (default: {READINGS_FILE}, "
        "unless they go to Event Hubs)",
    )
    parser.add_argument(
        "--eventhub-namespace", help="Event Hubs namespace FQDN (e.g. ns.servicebus.windows.net)"
    )
    parser.add_argument("--eventhub", help="event hub name to send the readings to")


def _config_from_args(args: argparse.Namespace) -> SimulationConfig:
    try:
        start = pd.Timestamp(args.start)
    except ValueError as exc:
        raise UsageError(f"--start {args.start!r} is not an ISO 8601 timestamp") from exc
    if start.tzinfo is not None:
        start = start.tz_convert("UTC").tz_localize(None)
    return SimulationConfig(
        devices=args.devices,
        sensors=args.sensors,
        hours=args.hours,
        interval_seconds=args.interval_seconds,
        anomaly_rate=args.anomaly_rate,
        seed=args.seed,
        start=start,
    ).validate()


def run(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    to_eventhub = bool(args.eventhub_namespace or args.eventhub)
    if to_eventhub and not (args.eventhub_namespace and args.eventhub):
        raise UsageError("--eventhub-namespace and --eventhub must be given together")
    if args.output is None and not to_eventhub:
        args.output = READINGS_FILE
    if args.output is not None:
        try:
            table_kind(args.output)
        except TableFormatError as exc:
            raise UsageError(f"--output {exc}") from exc
        require_output_file("--output", args.output)

    readings = simulate_readings(config)
    anomalous = int(readings[INJECTED_ANOMALY].sum())
    log.info(
        "simulated %d readings of %d device(s) x %d sensor(s); %d injected anomalies (%.2f%%)",
        len(readings),
        config.devices,
        config.sensors,
        anomalous,
        100.0 * anomalous / max(1, len(readings)),
    )
    if args.output is not None:
        try:
            write_table(readings, args.output)
        except OSError as exc:  # a place the checks above could not foresee (/proc, a full disk)
            raise UsageError(f"--output {args.output}: cannot write it ({_reason(exc)})") from None
        log.info("wrote %s", args.output)
    if to_eventhub:
        from batchscore.cloud import eventhub  # only this branch needs the Event Hubs client

        sent = eventhub.send_readings(
            readings[[TS, DEVICE, SENSOR, VALUE]], args.eventhub_namespace, args.eventhub
        )
        log.info("sent %d readings to %s/%s", sent, args.eventhub_namespace, args.eventhub)
    return 0


def _reason(exc: OSError) -> str:
    """The operating system's words for a failed write (pyarrow's carry the file's temporary
    name; ``strerror`` alone does not)."""
    return os.strerror(exc.errno) if exc.errno else str(exc)
