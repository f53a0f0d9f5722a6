"""Azure ML v2 parallel entry script: score one partition per ``run`` call.

Contract (the same under the local runner, ``batchscore score``):

* ``init()`` parses ``--models DIR`` (the model store; falls back to the
  ``AZUREML_MODEL_DIR`` environment variable) and an optional ``--log-level`` from
  ``sys.argv`` with ``parse_known_args`` (the job passes its own flags too), and
  opens the store.
* ``run(mini_batch, mini_batch_context)`` takes one partition: a DataFrame
  (tabular MLTable input) or a list of Parquet/CSV file paths (uri_folder input).
  Partition keys missing from the rows are taken from
  ``mini_batch_context.partition_key_value`` (or, for files, from
  ``Device=.../Sensor=...`` folders). It returns the prediction rows
  (``TS, Device, Sensor, Value, Score, IsAnomaly, ModelVersion``), one per input
  row that scored; unscorable rows are left out and logged. A partition with no
  model raises ``ModelNotFoundError`` naming the pair, so the job records the
  mini-batch as failed with that reason. An empty partition returns an empty
  frame with the prediction columns.
* ``shutdown()`` logs a summary.

Azure ML loads this file by path from a snapshot of the ``scoring/`` folder,
whose name is not ``scoring``; the block below then registers that folder as the
package ``scoring`` so the imports work exactly as in ``import scoring.steps.score``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any


def _ensure_scoring_package() -> None:
    """Make ``scoring`` importable from the snapshot this file sits in (``steps/score.py``
    inside the ``scoring/`` folder) when loaded as a top-level file."""
    if "scoring" in sys.modules:
        return
    folder = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location(
        "scoring", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot register {folder} as the package 'scoring'")
    package = importlib.util.module_from_spec(spec)
    sys.modules["scoring"] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules["scoring"]
        raise


if not __package__:
    _ensure_scoring_package()

import pandas as pd  # noqa: E402  (after the package registration above)

from scoring.data.schema import (  # noqa: E402
    PARTITION_KEYS,
    decode_partition_value,
    read_table,
)
from scoring.errors import UsageError  # noqa: E402
from scoring.models.predictor import SensorPredictor, empty_predictions  # noqa: E402
from scoring.models.store import ModelNotFoundError, ModelStore  # noqa: E402

__all__ = ["init", "run", "shutdown", "ModelNotFoundError", "EntryScriptError"]

log = logging.getLogger("scoring.steps.score")

_predictor: SensorPredictor | None = None
_started: float = 0.0
_failed_batches: int = 0


class EntryScriptError(UsageError):
    """The entry script is misconfigured (a flag or path named in the message)."""


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="score.py", add_help=False)
    parser.add_argument("--models", default=None)
    parser.add_argument("--log-level", dest="log_level", default=None)
    args, _unknown = parser.parse_known_args(argv)
    return args


def _configure_logging(level_name: str | None) -> None:
    if not level_name:
        return
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise EntryScriptError(
            f"--log-level {level_name!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("scoring").setLevel(level)


def init() -> None:
    """Parse the arguments and open the model store (once per worker process)."""
    global _predictor, _started, _failed_batches
    args = _parse_args(sys.argv[1:])
    _configure_logging(args.log_level)
    models = args.models or os.environ.get("AZUREML_MODEL_DIR")
    if not models:
        raise EntryScriptError(
            "--models DIR is required: the model store folder (or set AZUREML_MODEL_DIR)"
        )
    if not Path(models).is_dir():
        raise EntryScriptError(f"--models {models}: no such folder")
    store = ModelStore(models)
    count = len(store)  # reads the manifest now: a wrong folder fails here, not per batch
    _predictor = SensorPredictor(store)
    _started = time.monotonic()
    _failed_batches = 0
    log.info("entry script ready: %d models listed in %s", count, store.manifest_path)


def _context_keys(context: Any) -> dict[str, str]:
    keys = getattr(context, "partition_key_value", None) or {}
    return {str(name): str(value) for name, value in dict(keys).items()}


def _keys_from_path(path: Path) -> dict[str, str]:
    """``Device=a/Sensor=b`` folders of a hive-partitioned file, decoded."""
    keys = {}
    for part in path.parts:
        name, sep, value = part.partition("=")
        if sep and name in PARTITION_KEYS:
            keys[name] = decode_partition_value(value)
    return keys


def _add_missing_keys(frame: pd.DataFrame, keys: dict[str, str]) -> pd.DataFrame:
    present = {str(column).lower() for column in frame.columns}
    missing = {name: value for name, value in keys.items() if name.lower() not in present}
    return frame.assign(**missing) if missing else frame


def _read_files(paths: list[Any]) -> pd.DataFrame:
    frames = []
    for item in paths:
        path = Path(str(item))
        if path.suffix.lower() not in (".parquet", ".pq", ".csv"):
            log.warning("%s: not a Parquet or CSV file, skipped", path)
            continue
        frames.append(_add_missing_keys(read_table(path), _keys_from_path(path)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _describe(keys: dict[str, str], context: Any) -> str:
    pair = " ".join(f"{name}={value!r}" for name, value in keys.items())
    index = getattr(context, "minibatch_index", None)
    return f"mini-batch {index} ({pair})" if pair else f"mini-batch {index}"


def run(mini_batch: Any, mini_batch_context: Any = None) -> pd.DataFrame:
    """Score one partition; returns one prediction row per input row that scored."""
    global _failed_batches
    if _predictor is None:
        raise EntryScriptError("run() called before init()")
    keys = _context_keys(mini_batch_context)
    label = _describe(keys, mini_batch_context)
    if isinstance(mini_batch, pd.DataFrame):
        frame = _add_missing_keys(mini_batch, keys)
    else:
        frame = _add_missing_keys(_read_files(list(mini_batch)), keys)
    if frame.empty:
        log.info("%s: empty partition", label)
        return empty_predictions()
    try:
        result = _predictor.score(frame, name=label)
    except Exception as exc:
        _failed_batches += 1
        log.error("%s failed: %s", label, exc)
        raise
    log.debug("%s: %d rows in, %d scored", label, len(frame), len(result))
    return result


def shutdown() -> None:
    """Log what this worker did."""
    if _predictor is None:
        return
    stats = _predictor.stats
    log.info(
        "entry script done in %.1fs: %d partitions, %d rows in, %d scored, %d dropped, "
        "%d anomalies, %d failed mini-batches, %d models loaded",
        time.monotonic() - _started,
        stats.partitions,
        stats.rows_in,
        stats.rows_scored,
        stats.rows_dropped,
        stats.anomalies,
        _failed_batches,
        _predictor.models_loaded,
    )
