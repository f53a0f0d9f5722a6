"""``batchscore score``: run an entry script under the local parallel runner.

The flags are the Azure ML v2 parallel job's knobs under local names:

==================================  =================================================
``--workers``                        processes (``instance_count`` x
                                     ``max_concurrency_per_instance``); default: cores
``--mini-batch-size``                files (``10``) or bytes (``10kb``) per mini-batch
                                     for a folder of files; tabular input is always one
                                     mini-batch per (Device, Sensor) (``partition_keys``)
``--error-threshold``                failed items tolerated (-1 ignores)
``--mini-batch-error-threshold``     failed mini-batches tolerated (-1 ignores)
``--max-retries`` / ``--timeout``    ``retry_settings`` (local default timeout 300 s, not 60)
``--append-rows`` / ``--summary-only``  ``append_row_to`` set / unset
``--log-level``                      ``logging_level`` of the workers
==================================  =================================================

Everything after ``--`` is passed to the script as its program arguments. The default
entry script is the product's ``scoring/steps/score.py``, which needs ``--models DIR``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scoring.data.schema import PREDICTION_SCHEMA
from scoring.errors import UsageError
from scoring.runner import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    RunSettings,
    format_summary,
    run_parallel,
)
from scoring.runner.contract import DEFAULT_MINI_BATCH_SIZE, LOG_LEVELS, default_workers
from scoring.steps import ENTRY_SCRIPT

DEFAULT_ENTRY_SCRIPT = ENTRY_SCRIPT


EPILOG = """\
outputs (in --output DIR):
  predictions.parquet|csv  every returned row, exactly once, sorted by Device, Sensor, TS
                           (file input: in mini-batch order); replaced atomically on a
                           re-run; when a run fails or is interrupted
                           nothing is published and the last good file stays
  summary.json             status, counts, thresholds, failed mini-batches with reasons,
                           captured warnings, timings (always written; a
                           failed run's says "published": false and names the
                           kept predictions)
  .batchscore.lock         while a run is at work (its pid): a second run on the
                           same folder is refused; a dead run's is taken over
exit codes:
  0  succeeded
  1  a threshold was exceeded or init() failed
  2  bad usage
  3  empty window: the input holds no rows (summary.json "status": "empty_window"; the
     predictions file has the declared columns and no rows), so a schedule shows an
     ingestion outage instead of a green run
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "%(prog)s --input PATH --output DIR [options] [-- script arguments ...]"
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--input",
        required=True,
        type=Path,
        help="an extract folder (MLTable + Device=/Sensor= partitions), one CSV/Parquet file "
        "of readings, or a folder of files (each run() gets a list of paths)",
    )
    parser.add_argument(
        "--models", type=Path, help="model store folder (required by the default entry script)"
    )
    parser.add_argument("--output", required=True, type=Path, help="folder for the outputs")
    parser.add_argument(
        "--entry-script",
        type=Path,
        default=None,
        help="script with init()/run()/shutdown() (default: the package's score.py)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="worker processes (default: number of cores, here %(default)s)",
    )
    parser.add_argument(
        "--mini-batch-size",
        default=DEFAULT_MINI_BATCH_SIZE,
        help="for a folder of files: files per mini-batch (10) or a size (10kb, 1mb); "
        "ignored for tabular input, which is one mini-batch per partition (default: %(default)s)",
    )
    parser.add_argument(
        "--error-threshold",
        type=int,
        default=-1,
        help="failed items tolerated before the run fails; -1 ignores them (default: -1)",
    )
    parser.add_argument(
        "--mini-batch-error-threshold",
        type=int,
        default=-1,
        help="failed mini-batches tolerated before the run fails; -1 ignores them (default: -1)",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        help="retries of a mini-batch that raises, times out, returns short or whose worker "
        "dies (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="seconds one mini-batch may take before its worker is killed and it is retried "
        "(default: %(default)g; Azure ML's 60 s causes retry storms on cold workers); a "
        "worker's start-up (import + init()) may take the larger of this and 60 s",
    )
    rows = parser.add_mutually_exclusive_group()
    rows.add_argument(
        "--append-rows",
        dest="append_rows",
        action="store_true",
        default=True,
        help="write every returned row to DIR/predictions.<format> (default)",
    )
    rows.add_argument(
        "--summary-only",
        dest="append_rows",
        action="store_false",
        help="write only DIR/summary.json",
    )
    parser.add_argument(
        "--output-format",
        choices=("parquet", "csv"),
        default="parquet",
        help="format of the predictions file (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=None,
        help="logging level inside the workers (default: the global --log-level)",
    )
    parser.add_argument(
        "script_arguments",
        nargs="*",
        metavar="-- ARG",
        help="arguments after -- are passed to the entry script",
    )


def build_settings(args: argparse.Namespace) -> RunSettings:
    """The runner settings from the parsed flags; bad usage raises ``UsageError``."""
    if not args.input.exists():
        raise UsageError(f"--input {args.input}: no such file or folder")
    entry_script = args.entry_script or DEFAULT_ENTRY_SCRIPT
    program_arguments = list(args.script_arguments)
    uses_default_script = args.entry_script is None or (
        args.entry_script.resolve() == DEFAULT_ENTRY_SCRIPT
    )
    if args.models is not None:
        if not args.models.is_dir():
            raise UsageError(f"--models {args.models}: no such folder")
        program_arguments = ["--models", str(args.models), *program_arguments]
    elif uses_default_script:
        raise UsageError(
            "--models DIR is required with the default entry script scoring/steps/score.py"
        )
    if not entry_script.is_file():
        raise UsageError(f"--entry-script {entry_script}: no such file")
    return RunSettings(
        input_path=args.input,
        output_dir=args.output,
        entry_script=entry_script,
        program_arguments=program_arguments,
        workers=args.workers,
        mini_batch_size=args.mini_batch_size,
        error_threshold=args.error_threshold,
        mini_batch_error_threshold=args.mini_batch_error_threshold,
        max_retries=args.max_retries,
        timeout_seconds=args.timeout,
        append_rows=args.append_rows,
        output_format=args.output_format,
        log_level=args.log_level or getattr(args, "global_log_level", "INFO"),
        output_schema=PREDICTION_SCHEMA if uses_default_script else None,
    )


def run(args: argparse.Namespace) -> int:
    settings = build_settings(args)
    logging.getLogger("scoring.runner").info(
        "scoring %s with %s on %d worker(s)",
        settings.input_path,
        settings.entry_script,
        settings.workers,
    )
    summary = run_parallel(settings)
    print(format_summary(summary))
    return summary.exit_code
