"""Command-line front door: ``batchscore <command> [--help]`` (also ``python -m batchscore`` and
``python -m scoring``).

Each command lives in its own module that exposes two functions:

* ``add_arguments(parser: argparse.ArgumentParser) -> None``
* ``run(args: argparse.Namespace) -> int``  (the process exit code)

Modules are imported only when their command runs, so ``--help`` and light
commands start fast and a missing optional dependency of one command does not
break the others.

Exit codes: 0 success, 1 the run failed (e.g. a threshold exceeded),
2 bad usage (a wrong flag, a missing input, an unreadable database URL), 3 an empty window
(``score`` found no rows to score).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from scoring.errors import EXIT_OK, EXIT_USAGE, run_reporting_errors

# command name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": (
        "batchscore.commands.simulate",
        "generate raw sensor readings with injected anomalies",
    ),
    "aggregate": (
        "batchscore.commands.aggregate",
        "raw readings into tumbling windows in SensorReadings",
    ),
    "train": ("batchscore.commands.train", "train one anomaly model per (Device, Sensor)"),
    "extract": ("scoring.steps.extract", "readings of one window as partitioned Parquet + MLTable"),
    "score": ("batchscore.commands.score", "run an entry script under the local parallel runner"),
    "publish": (
        "scoring.steps.publish",
        "a scored window's predictions and run summary into window=<end>/ (as on Azure)",
    ),
    "runs": ("batchscore.commands.runs", "the run history: list, show or chart the run summaries"),
    "demo": ("batchscore.commands.demo", "everything above on a small fleet, with a report"),
    "example": ("batchscore.commands.example", "a worked batch-inference example (digits images)"),
    "models": ("batchscore.commands.models", "manage a model store (upload to Blob storage)"),
    "pipeline": ("batchscore.commands.pipeline", "Azure ML pipeline definitions (export as YAML)"),
    "bench": ("batchscore.commands.bench", "benchmark scoring strategies side by side"),
    "preflight": (
        "batchscore.commands.preflight",
        "before `pulumi up`: providers, region, roles, ML quota and SQL admin, as the deployer",
    ),
}


def _load(command: str):
    module_name, _ = COMMANDS[command]
    return importlib.import_module(module_name)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchscore",
        description="Per-sensor batch scoring, locally exactly as on the Azure ML cluster.",
    )
    parser.add_argument(
        "--log-level",
        dest="global_log_level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level of the command line (default: INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (_, help_text) in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen command's module is imported (the others only show help text).
        if only == name:
            _load(name).add_arguments(cmd_parser)
    return parser


def _chosen_command(argv: list[str]) -> str | None:
    for token in argv:
        if token in COMMANDS:
            return token
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _chosen_command(argv)
    parser = build_parser(only=command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the one-line reason
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(
        level=getattr(logging, args.global_log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run_reporting_errors(lambda: _load(args.command).run(args))
