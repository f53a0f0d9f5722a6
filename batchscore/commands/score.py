"""``batchscore score``: run an entry script under the local parallel runner.

The flags are the Azure ML v2 parallel job's knobs under local names:

==================================  =================================================
``--workers``                        processes (``instance_count`` x
                                     ``max_concurrency_per_instance``); default: cores
``--mini-batch-size``                files (``10``) or bytes (``10kb``) per mini-batch
                                     for a folder of files; tabular input is one
                                     mini-batch per partition (``partition_keys``: a
                                     shard of whole pairs, or one pair)
``--error-threshold``                failed items tolerated (-1 ignores)
``--mini-batch-error-threshold``     failed mini-batches tolerated (-1 ignores)
``--max-retries`` / ``--timeout``    ``retry_settings`` (local default timeout 300 s, not 60)
``--append-rows`` / ``--summary-only``  ``append_row_to`` set / unset
``--log-level``                      ``logging_level``: the command's and its workers'
                                     (every command takes it; stack default for the
                                     workers: ``scoringLoggingLevel``)
``--stack``                          every knob above from that stack's config, as the
                                     scheduled pipeline gets them; explicit flags win
==================================  =================================================

Without ``--stack`` the knobs take local defaults (:data:`LOCAL_DEFAULTS`), which differ
from the pipeline's in ``--mini-batch-error-threshold`` (-1 here, 5 there) and ``--workers``
(cores here, instances x concurrency there): ``--stack dev`` reproduces a cluster run.

Everything after ``--`` is passed to the script as its program arguments. The default
entry script is the product's ``scoring/steps/score.py``, which reads the model store in
``--models DIR`` (default ``.batchscore/models``, where ``train`` writes).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scoring import work_folder
from scoring.errors import UsageError
from scoring.runner import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    RunSettings,
    format_summary,
)
from scoring.runner.contract import DEFAULT_MINI_BATCH_SIZE, default_workers
from scoring.runner.processes import start_fork_server, stop_fork_server
from scoring.steps import ENTRY_SCRIPT
from scoring.work_folder import EXTRACT_FOLDER, MODELS_FOLDER, PREDICTIONS_FOLDER

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
  0    succeeded: every input row came back
  1    a threshold was exceeded or init() failed ("failed": nothing published), or rows
       did not come back within the thresholds ("incomplete": the rest published)
  2    bad usage
  3    empty window: the input holds no rows (summary.json "status": "empty_window"; the
       predictions file has the declared columns and no rows), so a schedule shows an
       ingestion outage instead of a green run
  130  interrupted by Ctrl-C, 143 by SIGTERM ("interrupted": nothing published, the last
       good predictions kept, the lock released)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "%(prog)s [--input PATH] [--output DIR] [options] [-- script arguments ...]"
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--input",
        type=Path,
        default=EXTRACT_FOLDER,
        help="an extract folder (MLTable + Shard= or Device=/Sensor= partitions), one CSV/Parquet "
        "file of readings, or a folder of files (each run() gets a list of paths) (default: "
        f"{EXTRACT_FOLDER}, where extract writes)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        help=f"model store folder (the default entry script needs one; default for it: "
        f"{MODELS_FOLDER}, where train writes)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=PREDICTIONS_FOLDER,
        help=f"folder for the outputs (default: {PREDICTIONS_FOLDER})",
    )
    parser.add_argument(
        "--entry-script",
        type=Path,
        default=None,
        help="script with init()/run()/shutdown() (default: the package's score.py)",
    )
    parser.add_argument(
        "--stack",
        help="take every knob below that is not given from this Pulumi stack's config "
        "(Pulumi.yaml defaults, then Pulumi.<stack>.yaml), as the scheduled pipeline does",
    )
    knobs = parser.add_argument_group(
        "parallel-job knobs (default: the local default shown, or the --stack config key)"
    )
    knobs.add_argument(
        "--workers",
        type=int,
        help="worker processes (local: the cores this process may use; stack: "
        "scoringInstanceCount x maxConcurrencyPerInstance)",
    )
    knobs.add_argument(
        "--mini-batch-size",
        help="for a folder of files: files per mini-batch (10) or a size (10kb, 1mb); "
        "ignored for tabular input, which is one mini-batch per partition (local: "
        f"{DEFAULT_MINI_BATCH_SIZE}; stack: miniBatchSize)",
    )
    knobs.add_argument(
        "--error-threshold",
        type=int,
        help="failed items tolerated before the run fails; -1 ignores them (local: -1; "
        "stack: errorThreshold)",
    )
    knobs.add_argument(
        "--mini-batch-error-threshold",
        type=int,
        help="failed mini-batches tolerated before the run fails; -1 ignores them (local: -1; "
        "stack: miniBatchErrorThreshold, 5 by default)",
    )
    knobs.add_argument(
        "--max-retries",
        type=int,
        help="retries of a mini-batch that raises, times out, returns short or whose worker "
        f"dies (local: {DEFAULT_MAX_RETRIES}; stack: maxRetries)",
    )
    knobs.add_argument(
        "--timeout",
        type=float,
        help="seconds one mini-batch may take before its worker is killed and it is retried "
        f"(local: {DEFAULT_TIMEOUT_SECONDS:g}; Azure ML's 60 s causes retry storms on cold "
        "workers; stack: miniBatchTimeoutSeconds); a worker's start-up (import + init()) may "
        "take the larger of this and 60 s",
    )
    rows = knobs.add_mutually_exclusive_group()
    rows.add_argument(
        "--append-rows",
        dest="append_rows",
        action="store_true",
        default=None,
        help="write every returned row to DIR/predictions.<format> (local default; stack: "
        "appendRows)",
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
        "script_arguments",
        nargs="*",
        metavar="-- ARG",
        help="arguments after -- are passed to the entry script",
    )


#: the knobs' defaults without ``--stack`` (``workers`` is filled in per run: the cores;
#: ``log_level`` is the command line's ``--log-level``, shared by the parent and the workers)
LOCAL_DEFAULTS: dict[str, object] = {
    "workers": None,
    "mini_batch_size": DEFAULT_MINI_BATCH_SIZE,
    "error_threshold": -1,
    "mini_batch_error_threshold": -1,
    "max_retries": DEFAULT_MAX_RETRIES,
    "timeout": DEFAULT_TIMEOUT_SECONDS,
    "append_rows": True,
    "log_level": "INFO",
}


def stack_defaults(stack: str) -> dict[str, object]:
    """The knobs as the stack's scheduled pipeline runs with them."""
    from components.config.pipeline import stack_settings

    return stack_settings(stack).local_runner_knobs()


def resolve_knobs(args: argparse.Namespace) -> dict[str, object]:
    """Each knob: the flag if given, else the stack's value (``--stack``), else the local
    default."""
    if args.stack:
        defaults = stack_defaults(args.stack)
    else:
        defaults = {**LOCAL_DEFAULTS, "workers": default_workers()}
    given = {name: getattr(args, name, None) for name in defaults}
    return {name: defaults[name] if given[name] is None else given[name] for name in defaults}


def build_settings(args: argparse.Namespace) -> RunSettings:
    """The runner settings from the parsed flags; bad usage raises ``UsageError``."""
    if not args.input.exists():
        raise UsageError(work_folder.missing("--input", args.input))
    entry_script = args.entry_script or DEFAULT_ENTRY_SCRIPT
    program_arguments = list(args.script_arguments)
    uses_default_script = args.entry_script is None or (
        args.entry_script.resolve() == DEFAULT_ENTRY_SCRIPT
    )
    models = args.models
    if models is None and uses_default_script:
        models = MODELS_FOLDER
    if models is not None:
        if models.exists() and not models.is_dir():
            raise UsageError(
                f"--models {models}: exists and is not a folder (a model store is one)"
            )
        if not models.is_dir():
            raise UsageError(work_folder.missing("--models", models, "no such folder"))
        program_arguments = ["--models", str(models), *program_arguments]
    if not entry_script.is_file():
        raise UsageError(f"--entry-script {entry_script}: no such file")
    knobs = resolve_knobs(args)
    from scoring.data.schema import PREDICTION_SCHEMA  # pandas: after start_fork_server

    return RunSettings(
        input_path=args.input,
        output_dir=args.output,
        entry_script=entry_script,
        program_arguments=program_arguments,
        workers=knobs["workers"],
        mini_batch_size=knobs["mini_batch_size"],
        error_threshold=knobs["error_threshold"],
        mini_batch_error_threshold=knobs["mini_batch_error_threshold"],
        max_retries=knobs["max_retries"],
        timeout_seconds=knobs["timeout"],
        append_rows=knobs["append_rows"],
        output_format=args.output_format,
        log_level=knobs["log_level"],
        output_schema=PREDICTION_SCHEMA if uses_default_script else None,
    )


def run(args: argparse.Namespace) -> int:
    start_fork_server()  # its imports overlap with ours (the engine, pandas) from here on
    try:
        return _score(args)
    finally:  # every worker is gone by now; the server would outlive us holding our stdout
        stop_fork_server()


def _score(args: argparse.Namespace) -> int:
    from scoring.runner import run_parallel

    settings = build_settings(args)
    settings.validate()  # every refusal before the first line of output
    logging.getLogger("scoring.runner").info(
        "scoring %s with %s%s",
        settings.input_path,
        settings.entry_script,
        f", knobs from stack {args.stack}" if args.stack else "",
    )  # the workers it runs on are logged once the mini-batches are known
    summary = run_parallel(settings)
    print(format_summary(summary))
    return summary.exit_code
