"""``batchscore demo``: every stage on a small simulated fleet, then a report against the
ground truth (the stages and the report are :mod:`batchscore.demo`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from batchscore.demo import DEFAULT_WORKDIR, DemoConfig, run_demo
from scoring.data.files import require_output_folder
from scoring.errors import UsageError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DemoConfig()
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help=f"folder for every file the demo writes (default: {DEFAULT_WORKDIR})",
    )
    parser.add_argument("--devices", type=int, default=defaults.devices, help="(10)")
    parser.add_argument("--sensors", type=int, default=defaults.sensors, help="(4)")
    parser.add_argument("--hours", type=int, default=defaults.hours, help="hours simulated (48)")
    parser.add_argument(
        "--score-hours",
        type=int,
        default=defaults.score_hours,
        help="the last hours are scored, the ones before train the models (12)",
    )
    parser.add_argument("--anomaly-rate", type=float, default=defaults.anomaly_rate, help="(0.01)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="(42)")
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help=f"processes for training and scoring ({defaults.workers})",
    )


def run(args: argparse.Namespace) -> int:
    if args.score_hours < 1 or args.score_hours >= args.hours:
        raise UsageError("--score-hours must be at least 1 and less than --hours")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    require_output_folder("--workdir", args.workdir)
    config = DemoConfig(
        devices=args.devices,
        sensors=args.sensors,
        hours=args.hours,
        score_hours=args.score_hours,
        anomaly_rate=args.anomaly_rate,
        seed=args.seed,
        workers=args.workers,
    )
    config.simulation().validate()  # --devices, --anomaly-rate ... before any stage runs
    report = run_demo(config, args.workdir)
    print(report.text())
    return 0
