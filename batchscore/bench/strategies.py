"""The strategies measured: the careful in-process loop, the fleet kernel alone, the product's
``score`` end to end, and one process per pair. ``child_*`` functions run in a fresh
interpreter (:func:`batchscore.bench.processes.run_child`) and print their JSON result."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batchscore.bench.processes import Measured, maxrss_bytes, run_measured


def child_sklearn_loop(payload: dict[str, Any]) -> dict[str, Any]:
    """The baseline, in a fresh process on one core: every model loaded before the clock
    starts (not timed: the loop is favoured); then, timed, the careful loop a user would
    write: read the window's Parquet, one ``decision_function`` per pair into one array,
    labels from its sign (libsvm's rule: decision > 0 is normal, what ``predict`` returns),
    one output frame written as one Parquet file.

    Timed beside it, as ``two_call_seconds``: the bench's earlier baseline, a loop over values
    already in memory calling ``decision_function`` and ``predict`` per pair, no file read or
    written."""
    from threadpoolctl import threadpool_limits

    from scoring.data.extract_folder import list_partitions, read_partition
    from scoring.models.store import ModelStore

    store = ModelStore(payload["models"])
    models = {key: store.load(*key) for key in store.keys()}
    with threadpool_limits(1):
        cpu0, t0 = time.process_time(), time.perf_counter()
        partitions = list_partitions(payload["input"])
        frame = pd.concat([read_partition(p.files, p.keys) for p in partitions], ignore_index=True)
        values = frame["Value"].to_numpy(dtype="float64").reshape(-1, 1)
        scores = np.empty(len(frame))
        versions = np.empty(len(frame), dtype=object)
        groups = frame.groupby(["Device", "Sensor"], sort=False).indices
        for pair, positions in groups.items():
            model = models[pair]
            scores[positions] = model.pipeline.decision_function(values[positions])
            versions[positions] = model.version
        out = frame.loc[:, ["TS", "Device", "Sensor", "Value"]].assign(
            Score=scores, IsAnomaly=(scores <= 0).astype("int64"), ModelVersion=versions
        )
        out.to_parquet(payload["output"], index=False)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        two_call_seconds = _two_call_loop(
            [(models[pair], values[rows]) for pair, rows in groups.items()]
        )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "two_call_seconds": two_call_seconds,
        "rows": len(frame),
        "maxrss_bytes": maxrss_bytes(),
    }


def _two_call_loop(work: list[tuple[Any, np.ndarray]]) -> float:
    """Seconds of ``decision_function`` and ``predict`` per pair, written into one array each."""
    t0 = time.perf_counter()
    total = sum(len(X) for _, X in work)
    scores, labels = np.empty(total), np.empty(total, dtype=np.int64)
    offset = 0
    for model, X in work:
        stop = offset + len(X)
        scores[offset:stop] = model.pipeline.decision_function(X)
        labels[offset:stop] = model.pipeline.predict(X)
        offset = stop
    return time.perf_counter() - t0


def child_fit_loop(payload: dict[str, Any]) -> dict[str, Any]:
    """A training baseline, in a fresh process: the readings in memory, one pair after another
    through scikit-learn's public API, timed; nothing saved. One process, the way a user would
    write it. ``payload["model"]``: ``reference``, one plain ``Pipeline(StandardScaler,
    OneClassSVM).fit`` a pair (the product's hyperparameters); ``default``, the product's
    default model (the trimming fit, the fit, the calibration) with scikit-learn's own ``fit``
    and ``decision_function``."""
    from scoring.models.training import TrainParams, build_pipeline, fit_model

    readings = pd.read_parquet(payload["input"])
    values = readings["Value"].to_numpy(dtype="float64").reshape(-1, 1)
    groups = readings.groupby(["Device", "Sensor"], sort=True).indices
    params = TrainParams()
    default = payload.get("model") == "default"
    cpu0, t0 = time.process_time(), time.perf_counter()
    for positions in groups.values():
        if default:
            fit_model(values[positions], params, direct=False)
        else:
            build_pipeline(params).fit(values[positions])
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - cpu0,
        "pairs": len(groups),
        "maxrss_bytes": maxrss_bytes(),
    }


def mode_train(readings: Path, models: Path, workers: int, *, reference: bool = False) -> Measured:
    """``batchscore train`` as a user runs it, from the interpreter's start to the model files,
    the manifest and the pack written; ``reference``: the reference model (``--nu`` and
    ``--gamma`` given: scikit-learn's OneClassSVM on every row, what ``fit-loop`` fits)."""
    from scoring.models.train_params import DEFAULT_GAMMA, DEFAULT_NU

    argv = [sys.executable, "-m", "batchscore", "--log-level", "WARNING", "train"]
    argv += ["--input", str(readings), "--models", str(models), "--jobs", str(workers)]
    if reference:
        argv += ["--nu", str(DEFAULT_NU), "--gamma", str(DEFAULT_GAMMA)]
    return run_measured([*argv, "--no-progress"])


def child_fleet_kernel(payload: dict[str, Any]) -> dict[str, Any]:
    """The vectorised kernel alone across every pair at once, on one core."""
    from threadpoolctl import threadpool_limits

    from scoring.data.extract_folder import list_partitions, read_partition
    from scoring.data.schema import pair_changes
    from scoring.models import fleet_kernel
    from scoring.models.pack import PackedStore
    from scoring.models.store import ModelStore

    frames = [read_partition(p.files, p.keys) for p in list_partitions(payload["input"])]
    frame = pd.concat(frames, ignore_index=True)
    pack = PackedStore.for_store(ModelStore(payload["models"]))
    if pack is None:
        raise RuntimeError(f"{payload['models']}: no current model pack")
    starts = np.concatenate([np.zeros(1, dtype=np.int64), pair_changes(frame)])
    lengths = np.diff(np.append(starts, len(frame)))
    rows = pack.rows(frame["Device"].take(starts).tolist(), frame["Sensor"].take(starts).tolist())
    values = frame["Value"].to_numpy(dtype="float64")
    with threadpool_limits(1):
        fleet_kernel.decision_values(pack, rows, lengths, values)  # pages in, as a worker would
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            fleet_kernel.decision_values(pack, rows, lengths, values)
            best = min(best, time.perf_counter() - t0)
    return {"rows": len(values), "pairs": len(starts), "seconds": best}


def mode_score(input_path: Path, store: Path, out_dir: Path, workers: int) -> dict[str, Any]:
    """``batchscore score`` as a user runs it; its summary.json adds the split."""
    argv = [sys.executable, "-m", "batchscore", "--log-level", "WARNING", "score"]
    argv += ["--input", str(input_path), "--models", str(store), "--output", str(out_dir)]
    argv += ["--workers", str(workers)]
    measured = run_measured(argv)
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    return {
        "measured": measured,
        "status": summary["status"],
        "items_failed": summary["items"]["failed"],
        "mini_batches": summary["mini_batches"]["total"],
        "timings": summary["timings_seconds"],
    }


# (process-per-pair): what one pipeline step per pair runs. Kept as source: exactly what runs.
ONE_PAIR_SCRIPT = """\
import json, sys
import pandas as pd
from scoring.models.store import ModelStore
part, store_dir, device, sensor, out = sys.argv[1:6]
frame = pd.read_parquet(part)
model = ModelStore(store_dir).load(device, sensor)
scores = model.pipeline.decision_function(frame[["Value"]].to_numpy(dtype="float64"))
pd.DataFrame({"TS": frame["TS"], "Device": device, "Sensor": sensor, "Value": frame["Value"],
              "Score": scores, "IsAnomaly": (scores <= 0).astype("int64"),
              "ModelVersion": model.version}).to_parquet(out, index=False)
"""


def mode_process_per_pair(
    extract: Path, store: Path, sample: list[tuple[str, str]], out_dir: Path
) -> tuple[list[Measured], pd.DataFrame]:
    from scoring.data.extract_folder import PART_FILE, partition_folder

    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for number, (device, sensor) in enumerate(sample):
        part = extract / partition_folder(device, sensor) / PART_FILE
        out = out_dir / f"pair-{number}.parquet"
        argv = [sys.executable, "-c", ONE_PAIR_SCRIPT, str(part), str(store), device, sensor]
        runs.append(run_measured([*argv, str(out)]))
    frames = [pd.read_parquet(p) for p in sorted(out_dir.glob("*.parquet"))]
    return runs, pd.concat(frames, ignore_index=True)
