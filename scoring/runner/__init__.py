"""The local parallel runner: the Azure ML v2 parallel-job contract on one machine.

Runs any entry script with ``init()``, ``run(mini_batch[, mini_batch_context])`` and an
optional ``shutdown()`` over a tabular input (an extract folder with an ``MLTable`` and
hive partitions, or one CSV/Parquet file: one mini-batch per (Device, Sensor)) or a folder
of files (``mini_batch_size`` files or bytes per mini-batch), in worker processes, with
Azure's thresholds, timeouts and retries, and atomic output.

Python API::

    from scoring.runner import RunSettings, run_parallel
    summary = run_parallel(RunSettings(input_path=..., output_dir=..., entry_script=...))
    summary.exit_code, summary.to_dict()
"""

from scoring.runner.contract import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    InvalidSettingsError,
    MiniBatchContext,
    RunSettings,
    parse_mini_batch_size,
)
from scoring.runner.engine import run_parallel
from scoring.runner.summary import RunSummary, format_summary

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT_SECONDS",
    "InvalidSettingsError",
    "MiniBatchContext",
    "RunSettings",
    "RunSummary",
    "format_summary",
    "parse_mini_batch_size",
    "run_parallel",
]
