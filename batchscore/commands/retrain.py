"""``batchscore retrain``: the training pipeline on this machine, the same steps as on the cluster.

extract (the training window, in shards) -> ``scoring/steps/train.py`` under the local parallel
runner -> ``python -m scoring.steps.promote`` into the model store's next generation. The
cluster's pipeline (``batchscore pipeline run --pipeline training``) runs exactly these steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

from scoring.errors import EXIT_EMPTY, EXIT_OK, UsageError
from scoring.models.generations import DEFAULT_KEEP
from scoring.models.promotion import GateRules
from scoring.steps.promote import DEFAULT_MAX_REJECTED_PERCENT
from scoring.steps.train import DEFAULT_HOLDOUT_PERCENT, RETRAIN_CHOICES
from scoring.work_folder import DATABASE_URL, MODELS_FOLDER

log = logging.getLogger(__name__)

TRAIN_ENTRY_SCRIPT = Path(__file__).resolve().parents[2] / "scoring" / "steps" / "train.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rules = GateRules()
    parser.description = (
        "Retrain every (Device, Sensor) on a training window, gate each candidate against its "
        "current model, and write the store's next generation (the training pipeline, locally)."
    )
    parser.add_argument(
        "--db", default=DATABASE_URL, help=f"readings database (default {DATABASE_URL})"
    )
    parser.add_argument(
        "--end", default="latest", help="window end: ISO 8601, now or latest (default latest)"
    )
    parser.add_argument(
        "--lookback-days", type=int, default=14, help="training window length (default 14)"
    )
    parser.add_argument("--models", type=Path, default=MODELS_FOLDER, help="the model store")
    parser.add_argument("--retrain", choices=RETRAIN_CHOICES, default="all")
    parser.add_argument(
        "--runs", type=Path, help="scoring runs' predictions root (window=*/), for --retrain needed"
    )
    parser.add_argument("--holdout-percent", type=int, default=DEFAULT_HOLDOUT_PERCENT)
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP, help="generations to keep")
    parser.add_argument("--min-rows", type=int, default=rules.min_rows)
    parser.add_argument(
        "--max-flag-rate-delta-percent", type=float, default=100 * rules.max_flag_rate_delta
    )
    parser.add_argument("--max-rejected-percent", type=float, default=DEFAULT_MAX_REJECTED_PERCENT)
    parser.add_argument("--workers", type=int, default=1, help="training processes (default 1)")


def _step_args(add_arguments, argv: list[str]) -> argparse.Namespace:
    """A step's own arguments, parsed from ``argv`` (the same flags it takes on the cluster)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from scoring.data.files import require_output_folder
    from scoring.runner import RunSettings, run_parallel
    from scoring.steps import extract, promote

    if args.lookback_days < 1:
        raise UsageError(f"--lookback-days {args.lookback_days}: must be at least 1")
    for flag in ("keep", "min_rows", "workers"):
        if getattr(args, flag) < 1:
            raise UsageError(
                f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be at least 1"
            )
    if not 0 <= args.holdout_percent < 100:
        raise UsageError(f"--holdout-percent {args.holdout_percent}: must be in 0..99")
    require_output_folder("--models", args.models)
    if args.runs is not None and not args.runs.is_dir():
        raise UsageError(f"--runs {args.runs}: no such folder")
    work = Path(tempfile.mkdtemp(prefix="batchscore-retrain-"))
    try:
        window = work / "extract"
        extract.run(
            _step_args(
                extract.add_arguments,
                ["--db", args.db, "--end", args.end, "--output", str(window),
                 "--lookback-minutes", str(args.lookback_days * 1440)],
            )
        )  # fmt: skip
        candidates = work / "candidates"
        script_args = [
            "--models", str(args.models), "--candidates", str(candidates),
            "--holdout-percent", str(args.holdout_percent), "--retrain", args.retrain,
        ]  # fmt: skip
        if args.runs is not None:
            script_args += ["--runs", str(args.runs)]
        summary = run_parallel(
            RunSettings(
                input_path=window,
                output_dir=work / "train-run",
                entry_script=TRAIN_ENTRY_SCRIPT,
                program_arguments=script_args,
                workers=args.workers,
                append_rows=False,
                show_progress=False,
            )
        )
        if summary.exit_code == EXIT_EMPTY:
            log.warning("no readings in the training window: the store is unchanged")
            return EXIT_EMPTY
        if summary.exit_code != EXIT_OK:
            log.error("training step: %s", json.dumps(summary.to_dict(), default=str)[:2000])
            return summary.exit_code
        (candidates / "parts").mkdir(parents=True, exist_ok=True)
        code = promote.run(
            _step_args(
                promote.add_arguments,
                ["--candidates", str(candidates), "--models", str(args.models),
                 "--keep", str(args.keep), "--min-rows", str(args.min_rows),
                 "--max-flag-rate-delta-percent", str(args.max_flag_rate_delta_percent),
                 "--max-rejected-percent", str(args.max_rejected_percent),
                 "--summary-out", str(work / "summary")],
            )
        )  # fmt: skip
        result = json.loads((work / "summary" / promote.SUMMARY_FILE).read_text(encoding="utf-8"))
        generation = result["generation"] or "unchanged"
        counts = ", ".join(
            f"{result[k]} {k}" for k in ("promoted", "added", "rejected", "failed", "kept")
        )
        print(f"{args.models}: {result['status']}, generation {generation} ({counts})")
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)
