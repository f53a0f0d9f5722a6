"""Command-line front door: ``batchscore <command> [--help]`` (also ``python -m batchscore``).

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
import gc
import importlib
import sys

from scoring import log_config
from scoring.errors import EXIT_OK, EXIT_USAGE, run_reporting_errors
from scoring.log_config import LOG_LEVELS

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
    "retrain": (
        "batchscore.commands.retrain",
        "the training pipeline locally: retrain, gate, write the store's next generation",
    ),
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
    "pipeline": (
        "batchscore.commands.pipeline",
        "Azure ML pipeline: export its YAML, run a window, backfill a gap",
    ),
    "bench": ("batchscore.commands.bench", "benchmark scoring strategies side by side"),
    "preflight": (
        "batchscore.commands.preflight",
        "before `pulumi up`: providers, region, roles, ML quota and SQL admin, as the deployer",
    ),
}


def _load(command: str):
    module_name, _ = COMMANDS[command]
    return importlib.import_module(module_name)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit 2), pointing at ``--help``."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_log_level(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default,
        help="logging level of the command and of the processes it starts (default: INFO)",
    )


def _add_log_level_to_subcommands(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` after every command and sub-action too (``batchscore score
    --log-level DEBUG``); given there, it overrides the one before the command."""
    for action in parser._actions:  # argparse keeps its subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_log_level(sub, argparse.SUPPRESS)
                _add_log_level_to_subcommands(sub)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="batchscore",
        description="Per-sensor batch scoring, locally exactly as on the Azure ML cluster.",
    )
    _add_log_level(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (_, help_text) in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen command's module is imported (the others only show help text).
        if only == name:
            _load(name).add_arguments(cmd_parser)
    _add_log_level_to_subcommands(parser)
    return parser


def _chosen_command(argv: list[str]) -> str | None:
    for token in argv:
        if token in COMMANDS:
            return token
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors(lambda: _flushed(_parse_and_run(argv)))


def entry() -> None:
    """The process entry (the ``batchscore`` command and ``python -m batchscore``): :func:`main`,
    then exit with its code.

    Before exiting, every object still alive is frozen out of the garbage collector's reach
    (``gc.freeze``). The interpreter's last collection would otherwise walk every object
    pandas, pyarrow and scikit-learn created (measured: 0.08 to 0.12 s of a 0.7 s ``score``,
    0.03 s frozen) to free memory the process's end frees anyway. Exit handlers (log
    flushing, telemetry export) and objects' own cleanup still run; only garbage already
    caught in reference cycles is left to the operating system. In-process callers (tests,
    the demo) call :func:`main` and keep a normal collector.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


def _flushed(code: int) -> int:
    """``code``, once stdout is flushed: a reader gone away (``| head``) is found here, where
    it is reported like every error, not by the interpreter at exit."""
    sys.stdout.flush()
    return code


def _parse_and_run(argv: list[str]) -> int:
    command = _chosen_command(argv)
    try:
        parser = build_parser(only=command)
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the one-line reason
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    except ModuleNotFoundError as exc:
        return _missing_package(command, exc)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    log_config.configure(args.log_level or "INFO")
    try:
        return _load(args.command).run(args)
    except ModuleNotFoundError as exc:
        return _missing_package(args.command, exc)


def _missing_package(command: str | None, exc: ModuleNotFoundError) -> int:
    """A command whose third-party package is not installed here (e.g. ``pipeline`` in the
    demo's lean virtualenv): one line naming the package and the fix. Our own modules
    missing is a bug, and raises."""
    missing = (exc.name or "").split(".")[0]
    if not missing or missing in ("scoring", "batchscore", "components"):
        raise exc
    print(
        f"error: batchscore {command} needs the package {distribution_of(exc.name)!r} "
        f"(module {exc.name}), which this environment lacks: use the full one (`make venv`, "
        "then .venv/bin/batchscore), or pip install -r requirements.txt",
        file=sys.stderr,
    )
    return EXIT_USAGE


#: namespace packages whose distributions are named after the module's first three parts
#: (azure.storage.blob -> azure-storage-blob, azure.ai.ml -> azure-ai-ml)
_NAMESPACES = {"azure": 3, "opentelemetry": 2}
#: modules whose distribution has another name
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "PyYAML", "skops": "skops"}


def distribution_of(module: str) -> str:
    """The pip package that provides ``module`` (``azure.storage.blob`` -> ``azure-storage-blob``;
    the namespace ``azure`` alone names nothing anyone can install)."""
    parts = module.split(".")
    depth = _NAMESPACES.get(parts[0])
    if depth:
        return "-".join(parts[:depth])
    return _DISTRIBUTIONS.get(parts[0], parts[0])
