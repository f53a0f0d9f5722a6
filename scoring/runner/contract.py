"""The Azure ML v2 parallel-job contract, as the local runner keeps it.

* :class:`MiniBatchContext` is what ``run(mini_batch, mini_batch_context)`` receives.
* :class:`RunSettings` holds every knob of a run (the local names of
  ``mini_batch_size``, ``error_threshold``, ``mini_batch_error_threshold``,
  ``retry_settings``, ``max_concurrency_per_instance``, ``append_row_to``,
  ``logging_level``) and validates them with messages that name the flag.
* :func:`check_entry_script` checks, without executing it, that a script defines ``run``.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the type only: importing pyarrow here would delay the fork server
    import pyarrow as pa

from scoring.errors import UsageError
from scoring.log_config import LOG_LEVELS

#: Azure ML's default per-mini-batch timeout is 60 s, which makes cold workers (model
#: loading, first imports) time out and retry in storms. Locally we default to 300 s.
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_RETRIES = 2
#: Azure ML's default for file inputs: 10 files per mini-batch.
DEFAULT_MINI_BATCH_SIZE = "10"
OUTPUT_FORMATS = ("parquet", "csv")

_SIZE_UNITS = {"": None, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*([kmg]?b)?\s*$", re.IGNORECASE)


class InvalidSettingsError(UsageError, ValueError):
    """A setting or input the runner cannot use (the CLI prints it as one line, exit 2)."""


@dataclass(frozen=True)
class MiniBatchContext:
    """The second argument of ``run``: which partition this is and its position."""

    partition_key_value: dict[str, str]
    minibatch_index: int


@dataclass(frozen=True)
class MiniBatchSize:
    """A parsed ``--mini-batch-size``: a file count or a byte budget (never both)."""

    files: int | None = None
    bytes: int | None = None

    def describe(self) -> str:
        return f"{self.files} files" if self.files is not None else f"{self.bytes} bytes"


def parse_mini_batch_size(text: str | int) -> MiniBatchSize:
    """Parse Azure's ``mini_batch_size``: ``"10"`` (files) or ``"10kb"``/``"1MB"`` (bytes)."""
    match = _SIZE_PATTERN.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise InvalidSettingsError(
            f"--mini-batch-size {text!r}: expected a positive file count (e.g. 10) "
            "or a size (e.g. 10kb, 1mb, 1gb)"
        )
    number = int(match.group(1))
    unit = _SIZE_UNITS[(match.group(2) or "").lower()]
    if unit is None:
        return MiniBatchSize(files=number)
    return MiniBatchSize(bytes=number * unit)


def default_workers() -> int:
    """The cores this process may use (what ``--workers`` defaults to)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class RunSettings:
    """Everything one run of the local parallel runner needs.

    ``program_arguments`` become the script's ``sys.argv[1:]`` in every worker.
    ``append_rows=False`` is Azure's summary-only mode (no ``append_row_to``).
    """

    input_path: Path
    output_dir: Path
    entry_script: Path
    program_arguments: list[str] = field(default_factory=list)
    workers: int = field(default_factory=default_workers)
    mini_batch_size: str = DEFAULT_MINI_BATCH_SIZE
    error_threshold: int = -1
    mini_batch_error_threshold: int = -1
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    append_rows: bool = True
    output_format: str = "parquet"
    log_level: str = "INFO"
    show_progress: bool = True
    #: how long a worker's import + ``init()`` may take; None: the larger of the
    #: mini-batch timeout and 60 s (cold imports and model loading are slow on a busy machine)
    init_timeout_seconds: float | None = None
    #: the columns and types of the rows ``run()`` returns, when the entry script declares
    #: them (the product's: the prediction contract); an empty result is written with them.
    #: None: the types of the first rows returned (or the contract's, for its columns)
    output_schema: pa.Schema | None = None

    def __post_init__(self) -> None:
        self.input_path = Path(self.input_path)
        self.output_dir = Path(self.output_dir)
        self.entry_script = Path(self.entry_script)
        self.program_arguments = [str(arg) for arg in self.program_arguments]

    @property
    def effective_init_timeout(self) -> float:
        if self.init_timeout_seconds is not None:
            return self.init_timeout_seconds
        return max(self.timeout_seconds, 60.0)

    def validate(self) -> MiniBatchSize:
        """Raise :class:`InvalidSettingsError` naming the first bad setting or path."""
        size = self.validate_knobs()
        if not self.input_path.exists():
            raise InvalidSettingsError(f"--input {self.input_path}: no such file or folder")
        from scoring.data.files import require_output_folder  # pandas: after the fork server

        require_output_folder("--output", self.output_dir, InvalidSettingsError)
        check_entry_script(self.entry_script)
        return size

    def validate_knobs(self) -> MiniBatchSize:
        """Like :meth:`validate`, for the knobs alone (no path is looked at): what a caller
        that makes the input itself checks before making it."""
        if self.workers < 1:
            raise InvalidSettingsError(f"--workers {self.workers}: must be at least 1")
        if self.max_retries < 0:
            raise InvalidSettingsError(f"--max-retries {self.max_retries}: must be 0 or more")
        if not self.timeout_seconds > 0:
            raise InvalidSettingsError(f"--timeout {self.timeout_seconds}: must be above 0 seconds")
        if self.init_timeout_seconds is not None and not self.init_timeout_seconds > 0:
            raise InvalidSettingsError(
                f"init timeout {self.init_timeout_seconds}: must be above 0 seconds"
            )
        for flag, value in (
            ("--error-threshold", self.error_threshold),
            ("--mini-batch-error-threshold", self.mini_batch_error_threshold),
        ):
            if value < -1:
                raise InvalidSettingsError(f"{flag} {value}: must be -1 (ignore) or 0 or more")
        if self.output_format not in OUTPUT_FORMATS:
            raise InvalidSettingsError(
                f"--output-format {self.output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise InvalidSettingsError(
                f"--log-level {self.log_level!r}: choose one of {', '.join(LOG_LEVELS)}"
            )
        return parse_mini_batch_size(self.mini_batch_size)


def check_entry_script(path: Path) -> None:
    """Fail early, without running it, if the script is missing or defines no ``run``."""
    if not path.is_file():
        raise InvalidSettingsError(f"--entry-script {path}: no such file")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise InvalidSettingsError(
            f"--entry-script {path}: syntax error at line {exc.lineno}: {exc.msg}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSettingsError(f"--entry-script {path}: cannot read it ({exc})") from exc
    if "run" not in _bound_names(tree):
        raise InvalidSettingsError(
            f"--entry-script {path}: defines no run(mini_batch[, mini_batch_context]) function"
        )


def _bound_names(tree: ast.Module) -> set[str]:
    """Names the script binds anywhere (defs, assignments, imports).

    Deliberately lenient: a ``run`` bound inside ``if``/``try`` or by an import counts, so
    only scripts that certainly lack ``run`` are refused before any worker starts.
    """
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names
