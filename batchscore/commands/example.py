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
from dataclasses import replace
from pathlib import Path

import pandas as pd

from scoring.data.files import require_output_folder, write_json
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


def example_folder(name: str) -> Path:
    """The example's files (a source checkout's ``examples/<name>``; a package installed
    without one has none: a usage error naming the fix)."""
    folder = EXAMPLES_DIR / name
    if not (folder / "prepare.py").is_file():
        raise UsageError(
            f"example {name}: its files (examples/{name}/) come with a clone of the repository, "
            "not with an installed package: clone it and `pip install -e .` there (make venv)"
        )
    return folder


def run_digits(workdir: Path, *, workers: int, mini_batch_size: str) -> dict:
    """Prepare the example, score it with the local runner and measure accuracy. Every
    setting is checked before the model is trained."""
    from scoring.runner import RunSettings, format_summary, run_parallel

    example_dir = example_folder("digits")
    require_output_folder("--workdir", workdir)
    settings = RunSettings(
        input_path=workdir / "images",  # made by prepare() below
        output_dir=workdir / "predictions",
        entry_script=example_dir / "score_digits.py",
        workers=workers,
        mini_batch_size=mini_batch_size,
        output_format="csv",
    )
    settings.validate_knobs()
    example = _load_prepare_module(example_dir).prepare(workdir)
    summary = run_parallel(
        replace(
            settings, input_path=example.images, program_arguments=["--model", str(example.model)]
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
    report = run_digits(workdir, workers=args.workers, mini_batch_size=args.mini_batch_size)
    if "accuracy" not in report:
        print(f"digits example failed: {report['status']} (see {workdir / 'predictions'})")
        return EXIT_FAILED
    print(
        f"digits: {report['correct']} of {report['images']} images right, "
        f"accuracy {report['accuracy']:.3f}; predictions in {report['predictions']}"
    )
    return EXIT_OK
