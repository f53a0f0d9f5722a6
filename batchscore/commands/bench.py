"""``batchscore bench``: scoring strategies side by side on one synthetic fleet (the strategies
and the report are :mod:`batchscore.bench`)."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from batchscore import bench
from batchscore.bench import DEFAULT_MODES, MODES, BenchContext, FleetSpec
from scoring.data.files import require_output_file, require_output_folder, write_json
from scoring.errors import EXIT_FAILED, EXIT_OK, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Generate a fleet (S pairs; T rows each to train on, R rows each to score), train and "
        "pack its models as `train` does, write the scoring window in both extract layouts, "
        "then time a careful in-process scikit-learn loop (the baseline: read the window's "
        "Parquet, one decision_function a pair, labels from its sign, one Parquet written), "
        "the product's `score` on shards, on one flat file of readings and on per-pair "
        "folders, the fleet kernel alone, and `train` (the default model, and the reference "
        "model with --nu/--gamma) each against the in-process loop fitting the same models; "
        "every label is checked against scikit-learn's, every trained model against the "
        "pack. Wall-clock and core-seconds (what Azure bills)."
    )
    parser.add_argument("--sensors", type=int, default=1000, help="pairs S (default: 1000)")
    parser.add_argument(
        "--rows",
        type=int,
        default=12,
        help="rows per pair to score R (default: 12, the 5-minute windows of an hourly run)",
    )
    parser.add_argument(
        "--train-rows", type=int, default=288, help="rows per pair to train on (default: 288)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2,
        help="worker processes for `score` and training (default: the cores this process may use)",
    )
    parser.add_argument(
        "--shard-rows", type=int, default=200_000, help="rows per shard (default: 200000)"
    )
    parser.add_argument(
        "--modes",
        default=",".join(DEFAULT_MODES),
        help=f"comma-separated subset of {','.join(MODES)} (default: {','.join(DEFAULT_MODES)})",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=20,
        help="pairs timed for process-per-pair, one process each, extrapolated to S (default 20)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each timed mode, alternating; the fastest of each is reported, all are "
        "listed (default: 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="fleet random seed (default: 0)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the fleet, models, every training run's store and the outputs here (default: a "
        "temporary folder, deleted when the bench ends)",
    )


def _parse_modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise UsageError(f"--modes {text!r}: use a comma-separated subset of {','.join(MODES)}")
    return modes


def _validate(args: argparse.Namespace) -> tuple[FleetSpec, tuple[str, ...]]:
    for flag, value, low in (
        ("--sensors", args.sensors, 1),
        ("--rows", args.rows, 1),
        ("--train-rows", args.train_rows, 10),
        ("--workers", args.workers, 1),
        ("--shard-rows", args.shard_rows, 1),
        ("--sample", args.sample, 1),
        ("--repeat", args.repeat, 1),
    ):
        if value < low:
            raise UsageError(f"{flag} {value}: must be at least {low}")
    if args.workdir is not None:
        require_output_folder("--workdir", args.workdir)
        if args.workdir.exists() and any(args.workdir.iterdir()):
            raise UsageError(f"--workdir {args.workdir}: must be empty or not exist yet")
    if args.json is not None:
        require_output_file("--json", args.json)
    spec = FleetSpec(args.sensors, args.rows, args.seed, train_rows=args.train_rows)
    return spec, _parse_modes(args.modes)


def run(args: argparse.Namespace) -> int:
    spec, modes = _validate(args)
    temporary = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="batchscore-bench-")) if temporary else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    ctx = BenchContext(spec, args.workers, modes, work, args.repeat, args.sample, args.shard_rows)
    try:
        results = bench.bench(ctx)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    print(bench.format_report(results))
    if args.json is not None:
        write_json(results, args.json)
        print(f"results written to {args.json}")
    return EXIT_OK if not results["correctness"]["problems"] else EXIT_FAILED
