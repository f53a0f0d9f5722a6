"""Azure ML v2 parallel entry script: score one mini-batch per ``run`` call.

Contract (the same under the local runner, ``batchscore score``):

* ``init()`` parses its own flags from ``sys.argv`` with ``parse_known_args`` (the driver
  passes its own too): ``--models DIR`` (the model store; or the ``AZUREML_MODEL_DIR``
  environment variable), ``--log-level``, and ``--predictions-dir DIR``, where each mini-batch's
  predictions are written as a Parquet part (:mod:`scoring.data.scored_parts`; Azure ML runs
  this step without ``append_row_to``), and opens the store once.
* ``run(mini_batch, mini_batch_context)`` takes one mini-batch: a DataFrame (tabular MLTable
  input, ``mode: direct``), either a **shard** (``partition_key_value`` ``{"Shard": ...}``: many
  whole pairs, Device and Sensor plain columns) or one **pair** (its key columns holding the
  raw folder values as ``mltable`` returns them, percent-encoding kept), or a list of file
  paths (``uri_folder`` input). Key values from folder names are decoded here; keys missing
  from the rows come from ``partition_key_value`` (raw too) or from ``Device=.../Sensor=...``
  folders. It returns **one row per input row**
  (``TS, Device, Sensor, Value, Score, IsAnomaly, ModelVersion, Status``): Azure ML counts a
  mini-batch that returns fewer items than it got as failed and retries it, so an unscorable
  reading is answered with a ``Status`` (``invalid_value``, ``missing_ts``, ...) and no score.
  A pair without a model is answered ``no_model`` in every layout (and from a readings file
  under the local runner: the same answer for every input). In a pair's mini-batch, a damaged
  model or a folder value no encoder wrote raises, naming the pair: the mini-batch fails with
  that reason (recorded in ``DIR/_failed/`` for the publish step) and the others go on. In a
  shard, such a pair's rows come back with ``model_error``, and the shard's other pairs are
  scored.
* ``shutdown()`` logs a summary.

Azure ML names this file by path (``steps/score.py``, a relative path inside the code folder as
the parallel run configuration allows: learn.microsoft.com/python/api/azureml-pipeline-steps/
azureml.pipeline.steps.parallelrunconfig, ``entry_script``) in a snapshot of the ``scoring/``
folder, whose name is not ``scoring``. Its parallel driver puts the snapshot folder on
``sys.path`` and imports the script by a module name made from that path (``steps.score``, so
``__package__`` is ``steps``); a loader may also run it as a top-level file. Unless it was
imported as ``scoring.steps.score``, the block below registers the folder it sits in as the
package ``scoring`` (when nothing is registered under that name yet), so the imports work
exactly as in ``import scoring.steps.score`` without relying on the image's ``PYTHONPATH``.
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
    inside the ``scoring/`` folder) when it was loaded under another module name."""
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


if __package__ != "scoring.steps":  # a top-level file, or `steps.score` under the driver
    _ensure_scoring_package()

import pandas as pd  # noqa: E402  (after the package registration above)

from scoring.data import scored_parts  # noqa: E402
from scoring.data.extract_folder import EMPTY_WINDOW_VALUE, SHARD, is_empty_window  # noqa: E402
from scoring.data.files import SUPPORTED as TABLE_SUFFIXES  # noqa: E402
from scoring.data.schema import (  # noqa: E402
    DEVICE,
    IS_ANOMALY,
    MODEL_VERSION,
    PARTITION_KEYS,
    SCORE,
    SENSOR,
    STATUS,
    TS,
    VALUE,
    decode_partition_value,
    empty_predictions,
    predictions_table,
    read_table,
)
from scoring.errors import UsageError  # noqa: E402
from scoring.models.predictor import PartitionError, SensorPredictor  # noqa: E402
from scoring.models.store import ModelNotFoundError, ModelStore  # noqa: E402

__all__ = ["init", "run", "shutdown", "ModelNotFoundError", "EntryScriptError"]

log = logging.getLogger("scoring.steps.score")
#: the Status of the answer to an empty window's marker row (never written as a prediction)
EMPTY_WINDOW_STATUS = "empty_window"

_predictor: SensorPredictor | None = None
_predictions_dir: Path | None = None
_started: float = 0.0
_failed_batches: int = 0


class EntryScriptError(UsageError):
    """The entry script is misconfigured (a flag or path named in the message)."""


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="score.py", add_help=False)
    parser.add_argument("--models", default=None)
    parser.add_argument("--log-level", dest="log_level", default=None)
    parser.add_argument("--predictions-dir", dest="predictions_dir", default=None)
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
    global _predictor, _predictions_dir, _started, _failed_batches
    args = _parse_args(sys.argv[1:])
    _configure_logging(args.log_level)
    models = args.models or os.environ.get("AZUREML_MODEL_DIR")
    if not models:
        raise EntryScriptError(
            "--models DIR is required: the model store folder (or set AZUREML_MODEL_DIR)"
        )
    if not Path(models).is_dir():
        raise EntryScriptError(f"--models {models}: no such folder")
    _predictions_dir = Path(args.predictions_dir) if args.predictions_dir else None
    if _predictions_dir is not None:
        _predictions_dir.mkdir(parents=True, exist_ok=True)
    store = ModelStore(models)
    if not store.manifest_path.is_file():  # a wrong folder fails here, not per mini-batch
        store.keys()  # raises, naming the folder
    _predictor = SensorPredictor(store)
    # Served by a current pack, the manifest is only hashed, never parsed (at 100,000 models
    # parsing it costs a worker about a second and a gigabyte).
    packed = _predictor.packed
    count = len(packed) if packed is not None else len(store)
    _started = time.monotonic()
    _failed_batches = 0
    log.info("entry script ready: %d models %s", count, f"in {packed.path}" if packed else "listed")


def _decoded(value: object, name: str) -> str:
    try:
        return decode_partition_value(str(value))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PartitionError(
            f"{name} folder value {value!r} is not a percent-encoded value this product wrote "
            f"({exc}); the partition is not scored"
        ) from exc


def _context_keys(context: Any) -> dict[str, str]:
    """``partition_key_value`` as handed over: the raw folder values."""
    keys = getattr(context, "partition_key_value", None) or {}
    return {str(name): str(value) for name, value in dict(keys).items()}


def _keys_from_path(path: Path) -> dict[str, str]:
    """``Device=a/Sensor=b`` folders of a hive-partitioned file, raw."""
    keys = {}
    for part in path.parts:
        name, sep, value = part.partition("=")
        if sep and name in PARTITION_KEYS:
            keys[name] = value
    return keys


def _with_decoded_keys(frame: pd.DataFrame, raw_keys: dict[str, str]) -> pd.DataFrame:
    """The frame with Device and Sensor as real values: folder values in its key columns (as
    mltable returns them) decoded, missing key columns taken from ``raw_keys``."""
    present = {str(column).lower(): column for column in frame.columns}
    updates: dict[str, object] = {}
    for name in PARTITION_KEYS:
        column = present.get(name.lower())
        if column is None:
            if name in raw_keys:
                updates[name] = _decoded(raw_keys[name], name)
            continue
        values = frame[column]
        uniques = values.dropna().unique()
        if len(uniques) == 1:  # one pair per partition: decode once
            decoded = _decoded(uniques[0], name)
            if decoded != uniques[0]:
                updates[column] = values.where(values.isna(), decoded)
        elif len(uniques) > 1:
            decode = {value: _decoded(value, name) for value in uniques}
            updates[column] = values.map(decode)
    return frame.assign(**updates) if updates else frame


def _read_files(paths: list[Any]) -> pd.DataFrame:
    frames = []
    for item in paths:
        path = Path(str(item))
        if path.suffix.lower() not in TABLE_SUFFIXES:
            log.warning("%s: not a Parquet or CSV file, skipped", path)
            continue
        frames.append(_with_decoded_keys(read_table(path), _keys_from_path(path)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _describe(keys: dict[str, str], context: Any) -> str:
    pair = " ".join(f"{name}={value!r}" for name, value in keys.items())
    index = getattr(context, "minibatch_index", None)
    return f"mini-batch {index} ({pair})" if pair else f"mini-batch {index}"


def run(mini_batch: Any, mini_batch_context: Any = None) -> pd.DataFrame:
    """Score one mini-batch; returns one prediction row per input row."""
    global _failed_batches
    if _predictor is None:
        raise EntryScriptError("run() called before init()")
    keys = _context_keys(mini_batch_context)
    label = _describe(keys, mini_batch_context)
    files = None if isinstance(mini_batch, pd.DataFrame) else [str(p) for p in mini_batch]
    part = scored_parts.part_key(keys, ",".join(files) if files is not None else None)
    describe = {"keys": keys, "files": files, "label": label}
    rows = len(mini_batch) if files is None else None
    shard = SHARD in keys  # many pairs, keys as plain columns: see the module docstring
    try:
        if files is None:
            frame = (
                # errors="ignore": the driver may hand a partition without its key column,
                # as the partitioned sample does (Azure/azureml-examples cli/jobs/parallel/
                # 1a_oj_sales_prediction/src/parallel_train/parallel_train.py)
                mini_batch.drop(columns=[SHARD], errors="ignore")
                if shard
                else _with_decoded_keys(mini_batch, keys)
            )
        else:
            frame = _read_files(files)
        rows = len(frame)
        if not rows:  # no rows at all (possibly without columns): nothing to answer
            log.info("%s: empty mini-batch", label)
            return empty_predictions()
        if is_empty_window(frame, keys):  # the empty window's marker: answered, not scored
            log.info("%s: the window has no readings (its marker partition)", label)
            return _empty_window_answer(rows)
        # A missing model is an answer (no_model rows), whatever the input: retrying cannot
        # make it appear. A damaged one fails a pair's mini-batch (Azure ML retries it and
        # counts it); in a shard only that pair's rows say so and the shard goes on.
        result = _predictor.score(
            frame, name=label, on_model_error="status" if shard else "no_model"
        )
        if _predictions_dir is not None:
            scored_parts.write_part(_predictions_dir, part, predictions_table(result), describe)
    except Exception as exc:
        _failed_batches += 1
        log.error("%s failed: %s", label, exc)
        if _predictions_dir is not None:
            scored_parts.write_failure(
                _predictions_dir, part, {**describe, "rows": rows}, f"{type(exc).__name__}: {exc}"
            )
        raise
    log.debug("%s: %d rows in, %d answered", label, rows, len(result))
    return result


def _empty_window_answer(rows: int) -> pd.DataFrame:
    """One answer per row of an empty window's marker partition (the driver counts them);
    nothing is written to the predictions, so publish sees zero rows and says empty_window."""
    return pd.DataFrame(
        {
            TS: pd.Series([pd.NaT] * rows, dtype="datetime64[us]"),
            DEVICE: [EMPTY_WINDOW_VALUE] * rows,
            SENSOR: [EMPTY_WINDOW_VALUE] * rows,
            VALUE: float("nan"),
            SCORE: float("nan"),
            IS_ANOMALY: pd.array([pd.NA] * rows, dtype="Int64"),
            MODEL_VERSION: None,
            STATUS: EMPTY_WINDOW_STATUS,
        }
    )


def shutdown() -> None:
    """Log what this worker did."""
    if _predictor is None:
        return
    stats = _predictor.stats
    log.info(
        "entry script done in %.1fs: %d partitions, %d rows in, %d scored, %d not scored, "
        "%d anomalies, %d failed mini-batches, %d models loaded",
        time.monotonic() - _started,
        stats.partitions,
        stats.rows_in,
        stats.rows_scored,
        stats.rows_unscored,
        stats.anomalies,
        _failed_batches,
        _predictor.models_loaded,
    )
