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

from batchscore.bench.processes import Measured, _maxrss_bytes, run_measured


def child_sklearn_loop(payload: dict[str, Any]) -> dict[str, Any]:
    """The careful in-process loop, in a fresh process: models loaded and values in memory
    before the clock starts; per pair one ``decision_function`` and one ``predict`` written
    into one array each, then one output frame. Only that is timed, on one core.

    Also timed, as ``one_call_seconds``: the same loop with labels taken from the decision
    values by libsvm's rule (decision > 0 is normal, which is what ``predict`` returns), one
    scikit-learn call per pair instead of two: the strictest plain baseline."""
    from threadpoolctl import threadpool_limits

    from scoring.data.extract_folder import list_partitions, read_partition
    from scoring.models.store import ModelStore

    store = ModelStore(payload["models"])
    pairs, series, stamps = [], [], []
    for partition in list_partitions(payload["input"]):
        frame = read_partition(partition.files, partition.keys)
        for (device, sensor), rows in frame.groupby(["Device", "Sensor"], sort=False):
            pairs.append((device, sensor, store.load(device, sensor)))
            series.append(rows["Value"].to_numpy(dtype="float64").reshape(-1, 1))
            stamps.append(rows["TS"].to_numpy())
    total = sum(len(x) for x in series)
    lengths = [len(x) for x in series]

    def loop(both: bool) -> tuple[pd.DataFrame, float, float]:
        cpu0, t0 = time.process_time(), time.perf_counter()
        scores = np.empty(total)
        labels = np.empty(total, dtype=np.int64)
        offset = 0
        for (_, _, model), X in zip(pairs, series, strict=True):
            stop = offset + len(X)
            scores[offset:stop] = model.pipeline.decision_function(X)
            if both:
                labels[offset:stop] = model.pipeline.predict(X)
            offset = stop
        if not both:
            labels = np.where(scores > 0, 1, -1)
        out = pd.DataFrame(
            {
                "TS": np.concatenate(stamps),
                "Device": np.repeat([d for d, _, _ in pairs], lengths),
                "Sensor": np.repeat([s for _, s, _ in pairs], lengths),
                "Value": np.concatenate(series).ravel(),
                "Score": scores,
                "IsAnomaly": (labels == -1).astype("int64"),
                "ModelVersion": np.repeat([m.version for _, _, m in pairs], lengths),
            }
        )
        return out, time.perf_counter() - t0, time.process_time() - cpu0

    with threadpool_limits(1):
        out, seconds, cpu = loop(both=True)
        _, one_call_seconds, _ = loop(both=False)
    out.to_parquet(payload["output"], index=False)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "one_call_seconds": one_call_seconds,
        "rows": total,
        "maxrss_bytes": _maxrss_bytes(),
    }


def child_fleet_kernel(payload: dict[str, Any]) -> dict[str, Any]:
    """The vectorised kernel alone across every pair at once, on one core."""
    from threadpoolctl import threadpool_limits

    from scoring.data.extract_folder import list_partitions, read_partition
    from scoring.models import fleet_kernel
    from scoring.models.pack import PackedStore
    from scoring.models.store import ModelStore

    frames = [read_partition(p.files, p.keys) for p in list_partitions(payload["input"])]
    frame = pd.concat(frames, ignore_index=True)
    pack = PackedStore.for_store(ModelStore(payload["models"]))
    if pack is None:
        raise RuntimeError(f"{payload['models']}: no current model pack")
    change = np.ones(len(frame), dtype=bool)
    devices, sensors = frame["Device"].to_numpy(object), frame["Sensor"].to_numpy(object)
    change[1:] = (devices[1:] != devices[:-1]) | (sensors[1:] != sensors[:-1])
    starts = np.flatnonzero(change)
    lengths = np.diff(np.append(starts, len(frame)))
    rows = pack.rows(list(devices[starts]), list(sensors[starts]))
    values = frame["Value"].to_numpy(dtype="float64")
    with threadpool_limits(1):
        fleet_kernel.decision_values(pack, rows, lengths, values)  # pages in, as a worker would
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            fleet_kernel.decision_values(pack, rows, lengths, values)
            best = min(best, time.perf_counter() - t0)
    return {"rows": len(values), "pairs": len(starts), "seconds": best}


def mode_score(extract: Path, store: Path, out_dir: Path, workers: int) -> dict[str, Any]:
    """``batchscore score`` as a user runs it; its summary.json adds the split."""
    argv = [sys.executable, "-m", "batchscore", "--log-level", "WARNING", "score"]
    argv += ["--input", str(extract), "--models", str(store), "--output", str(out_dir)]
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
