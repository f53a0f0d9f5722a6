"""``batchscore example digits``: the general batch-inference case, end to end.

A folder of files scored by a user's own entry script and model, ``mini_batch_size``
files at a time, under the same local runner (and the same contract) as the
per-sensor scoring: here scikit-learn's bundled digits, written as PNG files and
classified by ``examples/digits/score_digits.py``. The report is the accuracy
against the known labels.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

import pandas as pd

from scoring.data.files import write_json
from scoring.errors import EXIT_FAILED, EXIT_OK, UsageError
from scoring.work_folder import DIGITS_FOLDER

LOG = logging.getLogger(__name__)
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = ("digits",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=EXAMPLES, help="which worked example to run")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DIGITS_FOLDER,
        help=f"where the model, images and predictions go (default: {DIGITS_FOLDER}/)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument(
        "--mini-batch-size",
        default="32",
        help="files per mini-batch, or a size such as 10kb (default: 32)",
    )


def _load_prepare_module(example_dir: Path):
    spec = importlib.util.spec_from_file_location("digits_prepare", example_dir / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def accuracy(predictions: pd.DataFrame, labels: pd.DataFrame) -> tuple[float, int]:
    """Share of labelled files predicted right; files with no prediction count as wrong."""
    merged = labels.merge(predictions, on="file", how="left", suffixes=("", "_predicted"))
    correct = int((merged["digit"] == merged["digit_predicted"]).sum())
    return correct / len(labels), correct


def run_digits(workdir: Path, *, workers: int, mini_batch_size: str) -> dict:
    """Prepare the example, score it with the local runner and measure accuracy."""
    from scoring.runner import RunSettings, format_summary, run_parallel

    example_dir = EXAMPLES_DIR / "digits"
    if not (example_dir / "score_digits.py").is_file():
        raise UsageError(f"example folder {example_dir} is missing (run from a source checkout)")
    example = _load_prepare_module(example_dir).prepare(workdir)
    output_dir = workdir / "predictions"
    summary = run_parallel(
        RunSettings(
            input_path=example.images,
            output_dir=output_dir,
            entry_script=example_dir / "score_digits.py",
            program_arguments=["--model", str(example.model)],
            workers=workers,
            mini_batch_size=mini_batch_size,
            output_format="csv",
        )
    )
    print(format_summary(summary))
    report = {
        "status": summary.status,
        "images": summary.items_in,
        "scored": summary.items_in - summary.items_failed,
        "predictions": summary.predictions_file,
    }
    if summary.status == "succeeded" and summary.predictions_file:
        predictions = pd.read_csv(summary.predictions_file)
        labels = pd.read_csv(example.labels)
        share, correct = accuracy(predictions, labels)
        report.update(accuracy=round(share, 4), correct=correct)
    write_json(report, workdir / "report.json")
    return report


def run(args: argparse.Namespace) -> int:
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    report = run_digits(workdir, workers=args.workers, mini_batch_size=args.mini_batch_size)
    if "accuracy" not in report:
        print(f"digits example failed: {report['status']} (see {workdir / 'predictions'})")
        return EXIT_FAILED
    print(
        f"digits: {report['correct']} of {report['images']} images right, "
        f"accuracy {report['accuracy']:.3f}; predictions in {report['predictions']}"
    )
    return EXIT_OK
