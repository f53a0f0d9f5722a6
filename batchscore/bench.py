"""``batchscore bench``: scoring strategies side by side on one synthetic fleet.

It generates S sensors x R rows of readings as an extract folder (``MLTable`` + hive
partitions), trains one model per (Device, Sensor) with the product's ``train`` code, packs
the store (:mod:`scoring.models.pack`), then measures on the same data:

(a) ``process``: one Python process per (Device, Sensor), as the original solution's one
    pipeline step per pair: start Python, import pandas and scikit-learn, read the
    partition, load the model (the product's safe skops loading), one ``decision_function``
    pass (labels by libsvm's rule, decision > 0), write. A sample of ``--sample-a`` pairs is
    timed; the fleet figure extrapolates it, generously assuming ``--workers`` such
    processes run side by side with no contention (and no container start, which Azure adds).
(b) ``inprocess``: one Python process scoring partition after partition with scikit-learn:
    read the partition's Parquet file, load its model from its skops file (the product's
    safe loading), one ``decision_function`` pass, build the prediction rows; one
    predictions file at the end. No runner, no per-pair process: the strongest plain
    baseline.
(c) ``score``: the product's ``score`` end to end (the local parallel runner with
    ``--workers`` processes, the entry script ``scoring/score.py``, the packed store and
    the fast kernel), from the extract folder to the written predictions file.
``kernel``: the fast kernel alone on one core (every partition's values in memory), next to
    scikit-learn's ``decision_function`` on a sample, and the per-model loading overhead of
    the pack and of skops files.

(b) and (c) are timed as whole processes, from the Python start to the exit, like each
process of (a): start-up and imports count, as they do for a user or a cluster node.
Peak memory is the largest resident set of the measured process tree (sampled with psutil
every 10 ms, plus each process's own high-water mark ``VmHWM``; not ``ru_maxrss``, which a
child inherits from the forked parent across ``exec``). Correctness, not time, is
what the command checks: labels of (c) must equal those of (b) (and of (a) on its sample)
and decision values agree within 1e-9; otherwise it exits 1. Results go to stdout and,
with ``--json``, to a file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

MODES = ("a", "b", "c", "kernel")
SENSOR_KINDS = ("temperature", "pressure", "humidity", "vibration")
SCORE_TOLERANCE = 1e-9
PREDICTIONS_FILE = "predictions.parquet"
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- the fleet


@dataclass(frozen=True)
class FleetSpec:
    sensors: int
    rows: int
    seed: int = 0
    sensors_per_device: int = len(SENSOR_KINDS)

    def pairs(self) -> list[tuple[str, str]]:
        per = self.sensors_per_device
        width = max(5, len(str(math.ceil(self.sensors / per))))
        return [
            (
                f"dev-{i // per:0{width}d}",
                SENSOR_KINDS[i % per % len(SENSOR_KINDS)] + _suffix(i, per),
            )
            for i in range(self.sensors)
        ]


def _suffix(index: int, per: int) -> str:
    """Sensor names stay unique on a device when it carries more sensors than kinds."""
    slot = index % per
    return "" if slot < len(SENSOR_KINDS) else f"-{slot // len(SENSOR_KINDS)}"


def pair_values(spec: FleetSpec, index: int) -> np.ndarray:
    """One sensor's series: a daily cycle, noise, a slow drift and a few spikes."""
    rng = np.random.default_rng([spec.seed, index])
    t = np.arange(spec.rows)
    base, amplitude = rng.uniform(-20, 80), rng.uniform(0.5, 10)
    noise = rng.uniform(0.1, 2.0)
    values = base + amplitude * np.sin(2 * np.pi * t / 1440 + rng.uniform(0, 2 * np.pi))
    values += rng.normal(0, noise, spec.rows) + np.linspace(0, rng.normal(0, noise), spec.rows)
    spikes = rng.random(spec.rows) < 0.003
    values[spikes] += rng.choice([-1, 1], spikes.sum()) * rng.uniform(5, 15) * (amplitude + noise)
    return values


def window_timestamps(rows: int) -> np.ndarray:
    """Window ends, one minute apart, ending on a fixed hour (naive UTC)."""
    end = np.datetime64("2026-01-02T00:00:00", "us")
    return end - np.arange(rows)[::-1].astype("timedelta64[m]").astype("timedelta64[us]")


def write_fleet(spec: FleetSpec, extract_dir: Path) -> pd.DataFrame:
    """Write the extract folder; return the readings (for training) as one frame."""
    from scoring.data.extract_folder import MLTABLE_FILE, MLTABLE_TEXT, PART_FILE, partition_folder

    extract_dir.mkdir(parents=True, exist_ok=True)
    ts = pa.array(window_timestamps(spec.rows), pa.timestamp("us"))
    count = pa.array(np.full(spec.rows, 60, dtype=np.int64))
    devices, sensors, values = [], [], []
    for index, (device, sensor) in enumerate(spec.pairs()):
        series = pair_values(spec, index)
        table = pa.table(
            {
                "TS": ts,
                "Value": series,
                "MinValue": series - 0.5,
                "MaxValue": series + 0.5,
                "Count": count,
            }
        )
        folder = extract_dir / partition_folder(device, sensor)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / PART_FILE)
        devices.append(device)
        sensors.append(sensor)
        values.append(series)
    (extract_dir / MLTABLE_FILE).write_text(MLTABLE_TEXT, encoding="utf-8")
    return pd.DataFrame(
        {
            "TS": np.tile(window_timestamps(spec.rows), spec.sensors),
            "Device": np.repeat(devices, spec.rows),
            "Sensor": np.repeat(sensors, spec.rows),
            "Value": np.concatenate(values) if values else np.empty(0),
        }
    )


# ------------------------------------------------------------------ measuring processes


class PeakRss:
    """Samples the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)


def run_measured(argv: list[str]) -> tuple[str, int, float]:
    """Run a command; (stdout, peak RSS of its process tree in bytes, wall seconds)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_PACKAGE_PARENT), *_pythonpath()])}
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    with PeakRss(process.pid) as sampler:
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed (exit {process.returncode}):\n{tail}")
    return stdout, sampler.peak, wall


def run_child(function: str, payload: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
    """Run ``batchscore.bench.<function>(payload)`` in a fresh Python; (result, peak RSS, wall s).

    The child prints its result as the last line of stdout (JSON).
    """
    code = (
        "import json, sys; from batchscore import bench; "
        f"print(json.dumps(bench.{function}(json.loads(sys.argv[1]))))"
    )
    stdout, peak, wall = run_measured([sys.executable, "-c", code, json.dumps(payload)])
    result = json.loads(stdout.strip().splitlines()[-1])
    return result, max(peak, int(result.get("maxrss_bytes", 0))), wall


def _pythonpath() -> list[str]:
    existing = os.environ.get("PYTHONPATH", "")
    return [part for part in existing.split(os.pathsep) if part]


def _maxrss_bytes() -> int:
    """This process's peak RSS since it started (its exec), in bytes."""
    try:  # Linux: VmHWM is per address space, reset by exec
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0  # elsewhere the sampled figure stands alone


# ------------------------------------------------------------------------- the modes

# (a): what one pipeline step per pair runs. Kept as source so it is exactly what runs.
ONE_PAIR_SCRIPT = """\
import json, sys
import pandas as pd
import sklearn
from scoring.models.store import ModelStore
part, store_dir, device, sensor, out = sys.argv[1:6]
frame = pd.read_parquet(part)
model = ModelStore(store_dir).load(device, sensor)
X = frame[["Value"]].to_numpy(dtype="float64")
scores = model.pipeline.decision_function(X)
pd.DataFrame({"TS": frame["TS"], "Device": device, "Sensor": sensor, "Value": frame["Value"],
              "Score": scores, "IsAnomaly": (scores <= 0).astype("int64"),
              "ModelVersion": model.version}).to_parquet(out, index=False)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
print(json.dumps({"maxrss_bytes": int(hwm[0].split()[1]) * 1024 if hwm else 0}))
"""


def mode_process(
    extract_dir: Path, store_dir: Path, sample: list[tuple[str, str]], out_dir: Path
) -> dict[str, Any]:
    from scoring.data.extract_folder import PART_FILE, partition_folder

    out_dir.mkdir(parents=True, exist_ok=True)
    walls, peaks = [], []
    for number, (device, sensor) in enumerate(sample):
        part = extract_dir / partition_folder(device, sensor) / PART_FILE
        out = out_dir / f"pair-{number}.parquet"
        argv = [sys.executable, "-c", ONE_PAIR_SCRIPT, str(part), str(store_dir), device, sensor]
        stdout, peak, wall = run_measured([*argv, str(out)])
        walls.append(wall)
        peaks.append(max(peak, json.loads(stdout.strip().splitlines()[-1])["maxrss_bytes"]))
    return {"seconds_per_pair": walls, "peak_rss_bytes": max(peaks, default=0)}


def child_inprocess(payload: dict[str, Any]) -> dict[str, Any]:
    """(b), in a fresh process: partition after partition with scikit-learn, one output file.

    Per partition: read its Parquet file, load its model with the product's safe skops
    loading, one ``decision_function`` pass (labels by libsvm's rule: decision > 0), build the
    prediction rows. The strongest plain baseline: no runner, no per-pair process.
    """
    from scoring.data.extract_folder import list_partitions
    from scoring.models.store import ModelStore

    timings = {"read": 0.0, "load": 0.0, "decide": 0.0, "rows": 0.0, "write": 0.0}
    store = ModelStore(payload["models"])
    out = Path(payload["output"])
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = _StreamingParquet(out)
    rows = 0
    for partition in list_partitions(payload["input"]):
        t0 = time.perf_counter()
        frame = pd.concat([pq.read_table(path).to_pandas() for path in partition.files])
        t1 = time.perf_counter()
        model = store.load(partition.device, partition.sensor)
        t2 = time.perf_counter()
        scores = model.pipeline.decision_function(frame[["Value"]].to_numpy(dtype="float64"))
        t3 = time.perf_counter()
        predictions = pd.DataFrame(
            {
                "TS": frame["TS"].to_numpy(),
                "Device": partition.device,
                "Sensor": partition.sensor,
                "Value": frame["Value"].to_numpy(),
                "Score": scores,
                "IsAnomaly": (scores <= 0).astype("int64"),
                "ModelVersion": model.version,
            }
        )
        t4 = time.perf_counter()
        writer.add(predictions)
        rows += len(predictions)
        t5 = time.perf_counter()
        steps = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
        for name, seconds in zip(timings, steps, strict=True):
            timings[name] += seconds
    t0 = time.perf_counter()
    writer.close()
    timings["write"] += time.perf_counter() - t0
    return {"rows": rows, "timings": timings, "maxrss_bytes": _maxrss_bytes()}


class _StreamingParquet:
    """Appends prediction frames to one Parquet file in row groups (memory stays flat)."""

    def __init__(self, path: Path, group_rows: int = 256 * 1024) -> None:
        self.path, self.group_rows = path, group_rows
        self.pending: list[pd.DataFrame] = []
        self.pending_rows = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, frame: pd.DataFrame) -> None:
        self.pending.append(frame)
        self.pending_rows += len(frame)
        if self.pending_rows >= self.group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        frame = pd.concat(self.pending, ignore_index=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)
        self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()


def mode_score(extract_dir: Path, store_dir: Path, out_dir: Path, workers: int) -> dict[str, Any]:
    """(c): ``batchscore score`` as a user runs it; its summary.json adds the split."""
    argv = [sys.executable, "-m", "batchscore", "--log-level", "WARNING", "score"]
    argv += ["--input", str(extract_dir), "--models", str(store_dir), "--output", str(out_dir)]
    argv += ["--workers", str(workers)]
    _, peak, wall = run_measured(argv)
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    return {
        "seconds": wall,
        "peak_rss_bytes": peak,
        "status": summary["status"],
        "items_failed": summary["items"]["failed"],
        "timings": summary["timings_seconds"],
        "cpu_seconds": summary["cpu_seconds"],
    }


def mode_kernel(spec: FleetSpec, store_dir: Path, sklearn_sample: int) -> dict[str, Any]:
    """The fast kernel alone (one core), scikit-learn on a sample, loading overheads."""
    from threadpoolctl import threadpool_limits

    from scoring.models.pack import PackedStore
    from scoring.models.store import ModelStore

    pairs = spec.pairs()
    series = [pair_values(spec, i).reshape(-1, 1) for i in range(len(pairs))]
    store = ModelStore(store_dir)
    t0 = time.perf_counter()
    pack = PackedStore.for_store(store)
    if pack is None:
        raise RuntimeError(f"{store_dir}: no current model pack")
    models = [pack.load(store, device, sensor) for device, sensor in pairs]
    pack_seconds = time.perf_counter() - t0
    fast = [m.pipeline if m is not None else None for m in models]
    compiled = [f for f in fast if f is not None]
    with threadpool_limits(1):
        t0 = time.perf_counter()
        for model, X in zip(fast, series, strict=True):
            if model is not None:
                model.decide(X)
        kernel_seconds = time.perf_counter() - t0
    kernel_rows = sum(len(X) for f, X in zip(fast, series, strict=True) if f is not None)
    sample = pairs[: max(1, min(sklearn_sample, len(pairs)))]
    t0 = time.perf_counter()
    estimators = [store.load(device, sensor).pipeline for device, sensor in sample]
    skops_seconds = time.perf_counter() - t0
    with threadpool_limits(1):
        t0 = time.perf_counter()
        for estimator, X in zip(estimators, series, strict=False):
            estimator.decision_function(X)
        sklearn_seconds = time.perf_counter() - t0
    sklearn_rows = sum(len(X) for X in series[: len(sample)])
    n_sv = [f.support_vectors.shape[0] for f in compiled]
    return {
        "models": len(pairs),
        "compiled": len(compiled),
        "rows": kernel_rows,
        "seconds": kernel_seconds,
        "rows_per_second": kernel_rows / kernel_seconds if kernel_seconds else math.inf,
        "sklearn_rows": sklearn_rows,
        "sklearn_rows_per_second": sklearn_rows / sklearn_seconds if sklearn_seconds else 0,
        "pack_load_ms_per_model": 1e3 * pack_seconds / len(pairs),
        "skops_load_ms_per_model": 1e3 * skops_seconds / len(sample),
        "support_vectors_median": float(np.median(n_sv)) if n_sv else 0.0,
        "table_cells_median": float(
            np.median([f.table.n_cells for f in compiled if f.table is not None] or [0])
        ),
    }


# ---------------------------------------------------------------------- correctness


def compare_predictions(
    candidate: pd.DataFrame, reference: pd.DataFrame, what: str
) -> dict[str, Any]:
    """Same rows (by Device, Sensor, TS), identical labels, scores within 1e-9."""
    keys = ["Device", "Sensor", "TS"]
    left = candidate.sort_values(keys, kind="mergesort").reset_index(drop=True)
    right = reference.sort_values(keys, kind="mergesort").reset_index(drop=True)
    problems = []
    if len(left) != len(right):
        problems.append(f"{what}: {len(left)} rows, reference {len(right)}")
    else:
        for key in keys:
            if not (left[key].to_numpy() == right[key].to_numpy()).all():
                problems.append(f"{what}: rows differ in {key}")
        labels = int((left["IsAnomaly"].to_numpy() != right["IsAnomaly"].to_numpy()).sum())
        if labels:
            problems.append(f"{what}: {labels} labels differ")
        worst = float(
            np.max(np.abs(left["Score"].to_numpy() - right["Score"].to_numpy()), initial=0)
        )
        if not worst <= SCORE_TOLERANCE:
            problems.append(f"{what}: decision values differ by up to {worst:g}")
        versions = left["ModelVersion"].to_numpy() != right["ModelVersion"].to_numpy()
        if versions.any():
            problems.append(f"{what}: {int(versions.sum())} model versions differ")
    return {
        "rows": len(left),
        "anomalies": int(left["IsAnomaly"].sum()) if "IsAnomaly" in left else 0,
        "max_score_difference": (
            float(np.max(np.abs(left["Score"].to_numpy() - right["Score"].to_numpy()), initial=0))
            if len(left) == len(right)
            else None
        ),
        "problems": problems,
    }


def sklearn_reference(
    extract_dir: Path, store_dir: Path, pairs: list[tuple[str, str]]
) -> pd.DataFrame:
    """scikit-learn's own predictions for a few pairs (when (b) is not run)."""
    from scoring.data.extract_folder import list_partitions, read_partition
    from scoring.models.predictor import SensorPredictor
    from scoring.models.store import ModelStore

    wanted = set(pairs)
    predictor = SensorPredictor(ModelStore(store_dir), fast=False)
    frames = [
        predictor.score(read_partition(p.files, p.keys))
        for p in list_partitions(extract_dir)
        if (p.device, p.sensor) in wanted
    ]
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------- the command


@dataclass
class BenchContext:
    spec: FleetSpec
    workers: int
    modes: tuple[str, ...]
    sample_a: int
    work: Path
    repeat: int = 1
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def extract_dir(self) -> Path:
        return self.work / "extract"

    @property
    def store_dir(self) -> Path:
        return self.work / "models"


def bench(ctx: BenchContext) -> dict[str, Any]:
    """Prepare the fleet, run the chosen modes, check correctness; the results as a dict."""
    from scoring.models.pack import write_pack
    from scoring.models.store import ModelStore
    from scoring.models.training import train_models

    spec, results = ctx.spec, ctx.results
    results["config"] = {
        "sensors": spec.sensors,
        "rows_per_sensor": spec.rows,
        "rows": spec.sensors * spec.rows,
        "workers": ctx.workers,
        "sample_a": ctx.sample_a,
        "repeat": ctx.repeat,
        "modes": list(ctx.modes),
        "seed": spec.seed,
    }
    results["machine"] = _machine()
    prepare: dict[str, float] = {}
    t0 = time.perf_counter()
    readings = write_fleet(spec, ctx.extract_dir)
    prepare["generate_seconds"] = time.perf_counter() - t0
    log.info("fleet: %d sensors x %d rows in %s", spec.sensors, spec.rows, ctx.extract_dir)
    t0 = time.perf_counter()
    report = train_models(readings, ModelStore(ctx.store_dir), jobs=ctx.workers)
    prepare["train_seconds"] = time.perf_counter() - t0
    if report.failed or len(report.trained) != spec.sensors:
        raise RuntimeError(f"training failed for {len(report.failed)} pairs: {report.failed[:3]}")
    del readings
    t0 = time.perf_counter()
    summary = write_pack(ModelStore(ctx.store_dir))
    prepare["pack_seconds"] = time.perf_counter() - t0
    prepare["pack_bytes"] = summary.path.stat().st_size
    results["prepare"] = prepare

    rows = spec.sensors * spec.rows
    problems: list[str] = []
    outputs: dict[str, pd.DataFrame] = {}
    if "kernel" in ctx.modes:
        results["kernel"] = mode_kernel(spec, ctx.store_dir, min(spec.sensors, 50))
    # (b) and (c) alternate, ``repeat`` times each. The fastest run of each is reported (the
    # least disturbed on a shared machine, as timeit does); every run's time is kept.
    runs: dict[str, list[dict[str, Any]]] = {"b": [], "c": []}
    for _ in range(ctx.repeat):
        if "b" in ctx.modes:
            out = ctx.work / "out-b" / PREDICTIONS_FILE
            payload = {
                "input": str(ctx.extract_dir),
                "models": str(ctx.store_dir),
                "output": str(out),
            }
            child, peak, wall = run_child("child_inprocess", payload)
            figures = _mode_figures(wall, rows, spec.sensors, peak)
            runs["b"].append({**figures, "timings": child["timings"]})
        if "c" in ctx.modes:
            out_dir = ctx.work / "out-c"
            c = mode_score(ctx.extract_dir, ctx.store_dir, out_dir, ctx.workers)
            figures = _mode_figures(c["seconds"], rows, spec.sensors, c["peak_rss_bytes"])
            runs["c"].append(
                {**figures, "runner_timings": c["timings"], "runner_cpu_seconds": c["cpu_seconds"]}
            )
            if c["status"] != "succeeded" or c["items_failed"]:
                problems.append(f"(c) {c['status']}: {c['items_failed']} items failed")
    for mode, measured in runs.items():
        if measured:
            results[mode] = min(measured, key=lambda run: run["seconds"])
            results[mode]["all_seconds"] = [run["seconds"] for run in measured]
            results[mode]["peak_rss_mib"] = max(run["peak_rss_mib"] for run in measured)
    if "b" in ctx.modes:
        outputs["b"] = pd.read_parquet(ctx.work / "out-b" / PREDICTIONS_FILE)
    if "c" in ctx.modes:
        outputs["c"] = pd.read_parquet(ctx.work / "out-c" / PREDICTIONS_FILE)
    if "a" in ctx.modes:
        rng = np.random.default_rng(spec.seed)
        pairs = spec.pairs()
        picked = sorted(rng.choice(len(pairs), ctx.sample_a, replace=False).tolist())
        sample = [pairs[i] for i in picked]
        a = mode_process(ctx.extract_dir, ctx.store_dir, sample, ctx.work / "out-a")
        per_pair = float(np.mean(a["seconds_per_pair"]))
        seconds = per_pair * spec.sensors / ctx.workers
        results["a"] = _mode_figures(seconds, rows, spec.sensors, a["peak_rss_bytes"])
        results["a"].update(
            {"sampled_pairs": len(sample), "seconds_per_process": per_pair, "extrapolated": True}
        )
        frames = [pd.read_parquet(p) for p in sorted((ctx.work / "out-a").glob("*.parquet"))]
        outputs["a"] = pd.concat(frames, ignore_index=True)
        outputs["a_pairs"] = pd.DataFrame(sample, columns=["Device", "Sensor"])
    results["correctness"] = _check(ctx, outputs, problems)
    results["ratios"] = _ratios(results)
    return results


def _mode_figures(seconds: float, rows: int, sensors: int, peak: int) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "rows_per_second": rows / seconds if seconds else math.inf,
        "ms_per_model": 1e3 * seconds / sensors,
        "peak_rss_mib": peak / 2**20,
    }


def _restrict(frame: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    return frame.merge(pairs, on=["Device", "Sensor"], how="inner")


def _check(
    ctx: BenchContext, outputs: dict[str, pd.DataFrame], problems: list[str]
) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    reference = outputs.get("b")
    if "c" in outputs:
        if reference is None:  # a sample of pairs scored by scikit-learn itself
            pairs = ctx.spec.pairs()
            step = max(1, len(pairs) // 50)
            sample = pairs[::step]
            reference_c = sklearn_reference(ctx.extract_dir, ctx.store_dir, sample)
            candidate = _restrict(outputs["c"], pd.DataFrame(sample, columns=["Device", "Sensor"]))
            checks["c_vs_sklearn_sample"] = compare_predictions(candidate, reference_c, "(c)")
        else:
            checks["c_vs_b"] = compare_predictions(outputs["c"], reference, "(c) vs (b)")
            expected = ctx.spec.sensors * ctx.spec.rows
            if len(outputs["c"]) != expected:
                problems.append(f"(c) wrote {len(outputs['c'])} rows of {expected}")
    if "a" in outputs and reference is not None:
        subset = _restrict(reference, outputs["a_pairs"])
        checks["a_vs_b"] = compare_predictions(outputs["a"], subset, "(a) vs (b)")
    for check in checks.values():
        problems.extend(check["problems"])
    checks["problems"] = problems
    return checks


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    ratios = {}
    for slow in ("a", "b"):
        if slow in results and "c" in results:
            ratios[f"c_vs_{slow}"] = results[slow]["seconds"] / results["c"]["seconds"]
    kernel = results.get("kernel")
    if kernel and kernel["sklearn_rows_per_second"]:
        ratios["kernel_vs_sklearn"] = kernel["rows_per_second"] / kernel["sklearn_rows_per_second"]
    return ratios


def _machine() -> dict[str, Any]:
    import sklearn

    return {
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "load_average_at_start": os.getloadavg(),
    }


# ---------------------------------------------------------------------- the report

_LABELS = {
    "a": "(a) one process per pair",
    "b": "(b) in-process scikit-learn",
    "c": "(c) product score",
}


def format_report(results: dict[str, Any]) -> str:
    config = results["config"]
    lines = [
        f"bench: {config['sensors']} sensors x {config['rows_per_sensor']} rows = "
        f"{config['rows']:,} rows, {config['workers']} worker(s), "
        f"{results['machine']['cpus']} CPU(s)",
        "",
        f"{'mode':<34}{'seconds':>10}{'rows/s':>14}{'ms/model':>11}{'peak MiB':>10}",
    ]
    for mode, label in _LABELS.items():
        if mode not in results:
            continue
        figures = results[mode]
        if mode == "a":
            label += " *"
        elif mode == "c":
            label += f" ({config['workers']} workers)"
        lines.append(
            f"{label:<34}{figures['seconds']:>10.2f}{figures['rows_per_second']:>14,.0f}"
            f"{figures['ms_per_model']:>11.3f}{figures['peak_rss_mib']:>10.0f}"
        )
    if config.get("repeat", 1) > 1:
        for mode in ("b", "c"):
            if mode in results:
                seconds = ", ".join(f"{s:.2f}" for s in results[mode]["all_seconds"])
                lines.append(f"({mode}) best of {config['repeat']} runs: {seconds} s")
    if "a" in results:
        lines.append(
            f"* (a): {results['a']['seconds_per_process']:.2f}s per process, mean of "
            f"{results['a']['sampled_pairs']} timed pairs, times S / {config['workers']} "
            "processes side by side (no contention assumed)"
        )
    kernel = results.get("kernel")
    if kernel:
        lines += [
            "",
            f"fast kernel, 1 core: {kernel['rows_per_second']:,.0f} rows/s "
            f"({kernel['compiled']} of {kernel['models']} models compiled, median "
            f"{kernel['support_vectors_median']:.0f} support vectors); scikit-learn "
            f"decision_function: {kernel['sklearn_rows_per_second']:,.0f} rows/s",
            f"model loading: pack {kernel['pack_load_ms_per_model']:.4f} ms/model, "
            f"skops file {kernel['skops_load_ms_per_model']:.2f} ms/model",
        ]
    b = results.get("b")
    if b:
        t = b["timings"]
        lines.append(
            "(b) time split: " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in t.items())
        )
    ratios = results.get("ratios", {})
    if ratios:
        lines.append(
            "ratios: "
            + ", ".join(f"{name.replace('_', ' ')} {value:,.1f}x" for name, value in ratios.items())
        )
    prepare = results.get("prepare", {})
    if prepare:
        lines.append(
            f"prepare: generate {prepare['generate_seconds']:.1f}s, train "
            f"{prepare['train_seconds']:.1f}s, pack {prepare['pack_seconds']:.1f}s "
            f"({prepare['pack_bytes'] / 2**20:.1f} MiB)"
        )
    problems = results["correctness"]["problems"]
    checked = [name for name in results["correctness"] if name != "problems"]
    if problems:
        lines += ["", "CORRECTNESS FAILED:", *(f"  {p}" for p in problems)]
    else:
        lines += ["", f"correctness: labels identical, scores within 1e-9 ({', '.join(checked)})"]
    return "\n".join(lines)
