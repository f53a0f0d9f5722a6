"""The local parallel runner: the Azure ML v2 parallel-job contract on one machine.

Runs any entry script with ``init()``, ``run(mini_batch[, mini_batch_context])`` and an
optional ``shutdown()`` over a tabular input (an extract folder with an ``MLTable`` and
hive partitions, one mini-batch per partition: a ``Shard=`` of many whole pairs or one
``Device=/Sensor=`` pair; or one CSV/Parquet file: one mini-batch per pair) or a folder
of files (``mini_batch_size`` files or bytes per mini-batch), in worker processes, with
Azure's thresholds, timeouts and retries, and atomic output.

Behaviour worth knowing (and where it differs from Azure ML on purpose):

* Failed items = inputs - items returned; a mini-batch that raises, times out, returns
  short or whose worker dies is retried ``max_retries`` times, then counts as failed
  (the rows of a short last attempt are kept). Thresholds of -1 ignore failures; a run
  over a threshold stops early and fails (exit 1) naming the threshold, the count and the
  worst mini-batches.
* Default timeout 300 s (Azure: 60 s, which makes cold workers retry in storms). A
  worker's start-up (import + ``init()``) may take the larger of the timeout and 60 s; an
  ``init()`` that raises or hangs fails the run at once with its reason. A worker killed
  during ``init()`` (e.g. by the OOM killer) is replaced; the third such death fails the run.
* Output: ``predictions.parquet`` (or ``.csv`` with a header), written to a temporary file
  in the output folder and published with one ``os.replace``: a re-run replaces, never
  duplicates. A failed or interrupted run publishes nothing and leaves the last good
  predictions in place; ``summary.json`` always tells what happened (``"published": false``
  and the kept file named, with the run that published it).
* One run at a time per output folder: a lock file holds the owner's pid; a second run is
  refused in one line, the lock of a run that died is taken over and the temporary files
  it left are removed (:mod:`scoring.runner.output_folder`).
* Tabular input without a single row is an empty window: status ``empty_window``, exit code
  3 (:data:`scoring.errors.EXIT_EMPTY`), and the predictions file has the declared columns
  (``RunSettings.output_schema``) and no rows.
* Rows are delivered exactly once and in mini-batch order: tabular rows sorted by
  Device, Sensor, TS; file-mode rows in the order ``run`` returned them, mini-batches in
  sorted-path order. The result does not depend on ``workers``.
* WARNING+ log records emitted while a mini-batch runs are kept in the summary (first 5
  per mini-batch, with the total count), so dropped rows show their reasons.

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
from scoring.runner.summary import RunSummary, format_summary


def __getattr__(name: str):
    # The engine (pandas and the rest: a third of a second) loads on first use, so that
    # ``scoring.runner.processes.start_fork_server`` can run before it (PEP 562).
    if name == "run_parallel":
        from scoring.runner.engine import run_parallel

        return run_parallel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
