"""Azure ML v2 parallel entry script of the training pipeline: fit every pair of one mini-batch.

The training pipeline is extract (the training window, in shards of whole pairs) -> this step
(parallel, one shard per mini-batch) -> promote (:mod:`scoring.steps.promote`). Locally the
same script runs under the local runner (``batchscore score --entry-script``).

* ``init()`` parses its flags from ``sys.argv`` (``parse_known_args``): ``--models DIR`` (the
  current store, read only; may be empty), ``--candidates DIR`` (the output),
  ``--holdout-percent`` (the most recent share of each pair's readings kept out of training, on
  which the gate compares flag rates), ``--retrain all|needed`` and ``--runs DIR`` (the
  predictions root, for ``needed``).
* ``run(mini_batch, mini_batch_context)`` fits every pair in the mini-batch with the fleet code
  of ``batchscore train`` (:func:`scoring.models.training.train_models`) on its older
  readings, into ``DIR/parts/<mini-batch key>/`` (a small model store of its own, written beside
  and renamed into place, so a retried mini-batch replaces its part), with ``metrics.jsonl``:
  per pair the training rows, the held-out rows, the candidate's and the current model's flag
  rate on them, and any non-finite fitted parameter. It returns one row per input row
  (``Device, Sensor, TS, Status``): Azure ML counts a mini-batch that answers fewer items than
  it got as failed.

``--retrain needed`` fits only the pairs that need it: pairs without a model, pairs the latest
scoring run reported as failed (``failed_pairs`` of its ``summary.json``) and pairs marked
drifted there (``drift.parquet`` with columns ``Device, Sensor, Drifted``, when present).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any


def _ensure_scoring_package() -> None:
    """As in ``steps/score.py``: loaded by path from the snapshot, register ``scoring``."""
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


if __package__ != "scoring.steps":  # a top-level file, or `steps.train` under the driver
    _ensure_scoring_package()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scoring.data import scored_parts  # noqa: E402
from scoring.data.schema import (  # noqa: E402
    DEVICE,
    SENSOR,
    STATUS,
    TS,
    VALUE,
    decode_partition_value,
)
from scoring.errors import UsageError  # noqa: E402
from scoring.models.promotion import flag_rate, non_finite_parameters  # noqa: E402
from scoring.models.store import ModelStore, ModelStoreError  # noqa: E402
from scoring.partitioning import SHARD  # noqa: E402

log = logging.getLogger("scoring.steps.train")

PARTS_FOLDER = "parts"
METRICS_FILE = "metrics.jsonl"
RETRAIN_CHOICES = ("all", "needed")
DEFAULT_HOLDOUT_PERCENT = 20
DRIFT_FILE = "drift.parquet"
#: a row's Status in what run() returns
TRAINED, NOT_NEEDED, FAILED = "trained", "not_needed", "failed"

_state: dict[str, Any] = {}


class TrainStepError(UsageError):
    """The step is misconfigured (a flag or path named in the message)."""


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train.py", add_help=False)
    parser.add_argument("--models", default=None)
    parser.add_argument("--candidates", default=None)
    parser.add_argument("--holdout-percent", type=int, default=DEFAULT_HOLDOUT_PERCENT)
    parser.add_argument("--retrain", default="all")
    parser.add_argument("--runs", default=None)
    args, _unknown = parser.parse_known_args(argv)
    return args


def needed_pairs(runs: Path | None) -> set[tuple[str, str]]:
    """Pairs the latest scoring run (the newest ``window=*`` folder under ``runs``) reported
    failed or drifted."""
    if runs is None or not runs.is_dir():
        return set()
    windows = sorted(p for p in runs.glob("window=*") if p.is_dir())
    if not windows:
        return set()
    latest = windows[-1]
    pairs: set[tuple[str, str]] = set()
    try:
        summary = json.loads((latest / "summary.json").read_text(encoding="utf-8"))
        pairs |= {(str(p["device"]), str(p["sensor"])) for p in summary.get("failed_pairs") or []}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: no usable run summary (%s)", latest, exc)
    drift = latest / DRIFT_FILE
    if drift.is_file():
        frame = pd.read_parquet(drift, columns=[DEVICE, SENSOR, "Drifted"])
        drifted = frame[frame["Drifted"].astype(bool)]
        pairs |= set(zip(drifted[DEVICE].astype(str), drifted[SENSOR].astype(str), strict=True))
    log.info("%s: %d pairs failed or drifted in the latest run", latest, len(pairs))
    return pairs


def init() -> None:
    """Parse the flags and open the current store (once per worker)."""
    args = _parse_args(sys.argv[1:])
    if not args.candidates:
        raise TrainStepError("--candidates DIR is required: where the candidates are written")
    if args.retrain not in RETRAIN_CHOICES:
        raise TrainStepError(f"--retrain {args.retrain!r}: use {' or '.join(RETRAIN_CHOICES)}")
    if not 0 <= args.holdout_percent < 100:
        raise TrainStepError(f"--holdout-percent {args.holdout_percent}: must be in 0..99")
    candidates = Path(args.candidates)
    (candidates / PARTS_FOLDER).mkdir(parents=True, exist_ok=True)
    current = None
    if args.models and (Path(args.models) / "manifest.json").is_file():
        current = ModelStore(args.models)
        current.keys()  # a broken manifest fails here, naming it
    _state.update(
        candidates=candidates,
        current=current,
        holdout=args.holdout_percent / 100.0,
        needed=needed_pairs(Path(args.runs) if args.runs else None)
        if args.retrain == "needed"
        else None,
    )
    log.info(
        "training step ready: current store %s, retrain %s",
        args.models if current else "none",
        args.retrain,
    )


def _decoded_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Device and Sensor as real values (a pair folder's are percent-encoded by mltable)."""
    for name in (DEVICE, SENSOR):
        if name in frame.columns:
            values = frame[name].astype(str)
            frame = frame.assign(**{name: values.map(decode_partition_value)})
    return frame


def split_holdout(group: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older rows to train on, most recent rows held out): ``ceil(share * n)`` held out,
    never all of them."""
    ordered = group.sort_values(TS, kind="stable")
    held = min(len(ordered) - 1, math.ceil(share * len(ordered))) if share > 0 else 0
    held = max(0, held)
    return ordered.iloc[: len(ordered) - held], ordered.iloc[len(ordered) - held :]


def _wanted(device: str, sensor: str) -> bool:
    needed = _state["needed"]
    if needed is None:
        return True
    current = _state["current"]
    return (device, sensor) in needed or current is None or (device, sensor) not in current


def _current_model(device: str, sensor: str) -> tuple[Any, str | None]:
    current: ModelStore | None = _state["current"]
    if current is None or (device, sensor) not in current:
        return None, None
    try:
        loaded = current.load(device, sensor)
    except ModelStoreError as exc:
        log.warning("current model unusable, compared as none: %s", exc)
        return None, None
    return loaded.pipeline, loaded.version


def _pair_metrics(part: ModelStore, device: str, sensor: str, holdout: np.ndarray) -> dict:
    candidate = part.load(device, sensor)
    current, current_version = _current_model(device, sensor)
    return {
        "device": device,
        "sensor": sensor,
        "status": TRAINED,
        "rows": int(part.entry(device, sensor)["training_rows"]),
        "holdout_rows": len(holdout),
        "candidate_flag_rate": flag_rate(candidate.pipeline, holdout),
        "current_flag_rate": flag_rate(current, holdout) if current is not None else None,
        "current_version": current_version,
        "non_finite": non_finite_parameters(candidate.pipeline),
    }


def train_mini_batch(frame: pd.DataFrame, part_dir: Path) -> dict[tuple[str, str], str]:
    """Fit the wanted pairs of ``frame`` into the store ``part_dir`` with their metrics; returns
    each pair's status."""
    from scoring.models.training import train_models

    statuses: dict[tuple[str, str], str] = {}
    train_rows, holdouts, metrics = [], {}, []
    for (device, sensor), group in frame.groupby([DEVICE, SENSOR], sort=True):
        pair = (str(device), str(sensor))
        if not _wanted(*pair):
            statuses[pair] = NOT_NEEDED
            continue
        older, held = split_holdout(group, _state["holdout"])
        train_rows.append(older)
        holdouts[pair] = held[[VALUE]].to_numpy(dtype="float64")
    part = ModelStore(part_dir)
    if train_rows:
        report = train_models(pd.concat(train_rows), part, source="the mini-batch", min_rows=1)
        for device, sensor, _version, _rows in report.trained:
            metrics.append(_pair_metrics(part, device, sensor, holdouts[(device, sensor)]))
        for device, sensor, error in [*report.failed, *report.skipped]:
            _, current_version = _current_model(device, sensor)
            metrics.append(
                {
                    "device": device,
                    "sensor": sensor,
                    "status": FAILED,
                    "error": error,
                    "current_version": current_version,
                }
            )
    part_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(m) + "\n" for m in metrics)
    (part_dir / METRICS_FILE).write_text(lines, encoding="utf-8")
    statuses.update({(m["device"], m["sensor"]): m["status"] for m in metrics})
    return statuses


def run(mini_batch: Any, mini_batch_context: Any = None) -> pd.DataFrame:
    """Train one mini-batch (see the module docstring); one answer per input row."""
    if "candidates" not in _state:
        raise TrainStepError("run() called before init()")
    if not isinstance(mini_batch, pd.DataFrame):
        raise TrainStepError("the training step takes tabular input (an extract's MLTable)")
    raw = getattr(mini_batch_context, "partition_key_value", None) or {}
    keys = {str(name): str(value) for name, value in dict(raw).items()}
    if SHARD in mini_batch.columns:  # many whole pairs, keys as plain columns
        frame = mini_batch.drop(columns=[SHARD])
    else:  # one pair: its key columns hold the folder values
        frame = _decoded_keys(mini_batch)
    if frame.empty:
        return pd.DataFrame({DEVICE: [], SENSOR: [], TS: [], STATUS: []})
    candidates: Path = _state["candidates"]
    key = scored_parts.part_key(keys)
    target = candidates / PARTS_FOLDER / key
    build = candidates / PARTS_FOLDER / f".{key}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        statuses = train_mini_batch(frame, build)
        if target.exists():  # a retry of this mini-batch: its part is replaced whole
            shutil.rmtree(target)
        build.rename(target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    pairs = list(zip(frame[DEVICE].astype(str), frame[SENSOR].astype(str), strict=True))
    log.info("mini-batch %s: %d pairs", key, len(statuses))
    return pd.DataFrame(
        {
            DEVICE: frame[DEVICE].to_numpy(),
            SENSOR: frame[SENSOR].to_numpy(),
            TS: frame[TS].to_numpy(),
            STATUS: [statuses.get(pair, FAILED) for pair in pairs],
        }
    )


def shutdown() -> None:
    log.info("training step done")
