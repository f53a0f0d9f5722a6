"""``batchscore bench``: scoring strategies side by side on one synthetic fleet.

One fleet of S (Device, Sensor) pairs is generated: a training window of T rows per pair (a
day of 5-minute windows by default) and a scoring window of R rows per pair (R = 12 is what
an hourly run scores). Models are trained with the product's own ``train`` code (which also
packs them); the scoring window is written with the product's own extract writer in both
layouts. Then, on the same data, each mode is measured and every prediction checked against
scikit-learn's:

* ``sklearn-loop`` (the baseline): a careful in-process loop, models already loaded, the
  window's values already in memory as one array per pair; one ``decision_function`` and one
  ``predict`` per pair written into one array each, one output frame. Only the loop is timed
  (no interpreter start, no file read, no model load): the loop is favoured. The same loop
  with one scikit-learn call per pair is timed beside it.
* ``score-shard`` / ``score-pair``: the product end to end as a user runs it,
  ``batchscore score`` on the extract (shards of whole pairs, or a folder per pair), from the
  interpreter's start to the published predictions and summary.
* ``fleet-kernel``: the vectorised kernel alone across every pair at once, on one core.
* ``process-per-pair`` (not run by default): one Python process per pair, as one pipeline step
  per pair would run, on a sample of pairs, extrapolated to S over the workers.

Each figure is reported as wall-clock seconds and as core-seconds (CPU time of the whole
process tree): on Azure ML, core-seconds are what is billed. ``--repeat`` alternates the
timed modes and reports the fastest run of each (the least disturbed on a shared machine).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import resource
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

log = logging.getLogger(__name__)

LOOP, SHARD, PAIR, KERNEL, PROCESS = (
    "sklearn-loop",
    "score-shard",
    "score-pair",
    "fleet-kernel",
    "process-per-pair",
)
MODES = (LOOP, SHARD, PAIR, KERNEL, PROCESS)
DEFAULT_MODES = (LOOP, SHARD, PAIR, KERNEL)
#: the product's two layouts and the mode that scores each
LAYOUT_OF = {SHARD: "shard", PAIR: "pair"}
SENSOR_KINDS = ("temperature", "pressure", "humidity", "vibration")
SCORE_TOLERANCE = 1e-9
PREDICTIONS_FILE = "predictions.parquet"
WINDOW_MINUTES = 5
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- the fleet


@dataclass(frozen=True)
class FleetSpec:
    """S pairs, R rows each to score, T rows each to train on."""

    sensors: int
    rows: int
    seed: int = 0
    train_rows: int = 288
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
    """One sensor's training and scoring window back to back: a daily cycle, noise, a slow
    drift and a few spikes."""
    rng = np.random.default_rng([spec.seed, index])
    n = spec.train_rows + spec.rows
    t = np.arange(n)
    base, amplitude = rng.uniform(-20, 80), rng.uniform(0.5, 10)
    noise = rng.uniform(0.1, 2.0)
    per_day = 24 * 60 // WINDOW_MINUTES
    values = base + amplitude * np.sin(2 * np.pi * t / per_day + rng.uniform(0, 2 * np.pi))
    values += rng.normal(0, noise, n) + np.linspace(0, rng.normal(0, noise), n)
    spikes = rng.random(n) < 0.01
    values[spikes] += rng.choice([-1, 1], spikes.sum()) * rng.uniform(5, 15) * (amplitude + noise)
    return values


def window_ends(rows: int, end: str) -> np.ndarray:
    """``rows`` 5-minute window ends up to ``end`` (naive UTC)."""
    step = np.timedelta64(WINDOW_MINUTES, "m").astype("timedelta64[us]")
    return np.datetime64(end, "us") - np.arange(rows)[::-1] * step


SCORE_END = "2026-01-02T01:00:00"
TRAIN_END = "2026-01-02T00:00:00"


def fleet_frames(spec: FleetSpec) -> tuple[pd.DataFrame, list[tuple[str, str, pd.DataFrame]]]:
    """(training readings, scoring window per pair as the extract writer takes it)."""
    train_ts = window_ends(spec.train_rows, TRAIN_END)
    score_ts = window_ends(spec.rows, SCORE_END)
    training, window = [], []
    for index, (device, sensor) in enumerate(spec.pairs()):
        values = pair_values(spec, index)
        training.append(values[: spec.train_rows])
        scored = values[spec.train_rows :]
        window.append(
            (
                device,
                sensor,
                pd.DataFrame(
                    {
                        "TS": score_ts,
                        "Device": device,
                        "Sensor": sensor,
                        "Value": scored,
                        "MinValue": scored - 0.5,
                        "MaxValue": scored + 0.5,
                        "Count": np.full(spec.rows, WINDOW_MINUTES, dtype=np.int64),
                    }
                ),
            )
        )
    devices = [d for d, _ in spec.pairs()]
    sensors = [s for _, s in spec.pairs()]
    readings = pd.DataFrame(
        {
            "TS": np.tile(train_ts, spec.sensors),
            "Device": np.repeat(devices, spec.train_rows),
            "Sensor": np.repeat(sensors, spec.train_rows),
            "Value": np.concatenate(training) if training else np.empty(0),
        }
    )
    return readings, window


def write_extract(window: list, folder: Path, layout: str, shard_rows: int) -> None:
    """The scoring window as the extract step writes it (the product's own writer)."""
    from scoring.data.extract_folder import finish_extract, write_partitions

    folder.mkdir(parents=True)
    written = write_partitions(folder, iter(window), layout, shard_rows)
    rows = sum(len(frame) for _, _, frame in window)
    summary = {"window_end": SCORE_END, "rows": rows, "layout": layout}
    finish_extract(folder, written, layout, summary)


# ------------------------------------------------------------------ measuring processes


class PeakRss:
    """Samples the memory of a process and its descendants until stopped, and the CPU time
    each of them used (its last reading: a worker is reaped by a fork server the parent may
    never wait for, so the operating system's per-child accounting can miss it).

    Two memory figures: ``peak``, the summed RSS, counts a page every process maps once per
    process (the model pack, mapped read-only by every worker, counts once per worker), so it
    overstates; ``peak_pss``, the summed proportional set size (Linux), splits each shared
    page among the processes that map it: what the tree really holds, and what the bench
    reports. PSS, and the search for new descendants (it reads every process on the machine),
    cost more, so they happen every ``slow_every`` samples: the sampler's own CPU falls from
    about a quarter of a core to a tenth, which on two cores the measured product (the parent
    and its workers) otherwise shares with it while the single-process loop does not."""

    def __init__(self, pid: int, interval: float = 0.01, slow_every: int = 5) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self.peak_pss: int | None = 0 if sys.platform.startswith("linux") else None
        self.slow_every = slow_every
        self.cpu_by_pid: dict[int, float] = {}
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
        samples = 0
        tree = [root]
        while not self._stop.is_set():
            slow_turn = samples % self.slow_every == 0
            with_pss = self.peak_pss is not None and slow_turn
            rss = pss = 0
            try:
                if slow_turn:  # finding the descendants reads every process's stat file
                    tree = [root, *root.children(recursive=True)]
                for proc in tree:
                    try:
                        if with_pss:
                            memory = proc.memory_full_info()
                            pss += memory.pss
                        else:
                            memory = proc.memory_info()
                        rss += memory.rss
                        times = proc.cpu_times()
                        self.cpu_by_pid[proc.pid] = times.user + times.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.peak = max(self.peak, rss)
            if with_pss:
                self.peak_pss = max(self.peak_pss or 0, pss)
            samples += 1
            self._stop.wait(self.interval)


@dataclass
class Measured:
    """One command's run: its stdout, wall seconds, core-seconds of its whole process tree
    (every descendant reaped along the way), the peak summed RSS of that tree and its peak
    summed PSS (None where the system does not tell; see :class:`PeakRss`)."""

    stdout: str
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    peak_pss_bytes: int | None = None


def run_measured(argv: list[str]) -> Measured:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_PACKAGE_PARENT), *_pythonpath()])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    with PeakRss(process.pid) as sampler:
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(reaped, sum(sampler.cpu_by_pid.values()))
    if process.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed (exit {process.returncode}):\n{tail}")
    return Measured(stdout, wall, cpu, sampler.peak, sampler.peak_pss)


def run_child(function: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Measured]:
    """Run ``batchscore.bench.<function>(payload)`` in a fresh Python; its JSON result (the
    last line it prints) and the measured run."""
    code = (
        "import json, sys; from batchscore import bench; "
        f"print(json.dumps(bench.{function}(json.loads(sys.argv[1]))))"
    )
    measured = run_measured([sys.executable, "-c", code, json.dumps(payload)])
    result = json.loads(measured.stdout.strip().splitlines()[-1])
    measured.peak_rss_bytes = max(measured.peak_rss_bytes, int(result.get("maxrss_bytes", 0)))
    return result, measured


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
    return 0


# ------------------------------------------------------------------------- the modes


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


# ---------------------------------------------------------------------- correctness


def compare_predictions(
    candidate: pd.DataFrame, reference: pd.DataFrame, what: str
) -> dict[str, Any]:
    """Same rows (by Device, Sensor, TS), all scored, identical labels, scores within 1e-9."""
    keys = ["Device", "Sensor", "TS"]
    left = candidate.sort_values(keys, kind="mergesort").reset_index(drop=True)
    right = reference.sort_values(keys, kind="mergesort").reset_index(drop=True)
    problems = []
    if "Status" in left and (left["Status"].astype(str) != "ok").any():
        problems.append(f"{what}: {int((left['Status'].astype(str) != 'ok').sum())} rows not ok")
    worst = None
    if len(left) != len(right):
        problems.append(f"{what}: {len(left)} rows, reference {len(right)}")
    else:
        for key in keys:
            if not (left[key].to_numpy() == right[key].to_numpy()).all():
                problems.append(f"{what}: rows differ in {key}")
        labels = int((left["IsAnomaly"].to_numpy() != right["IsAnomaly"].to_numpy()).sum())
        if labels:
            problems.append(f"{what}: {labels} labels differ")
        difference = np.abs(
            left["Score"].to_numpy(dtype="float64") - right["Score"].to_numpy(dtype="float64")
        )
        worst = float(np.max(difference, initial=0))
        if not worst <= SCORE_TOLERANCE:
            problems.append(f"{what}: decision values differ by up to {worst:g}")
        versions = (
            left["ModelVersion"].astype(str).to_numpy()
            != right["ModelVersion"].astype(str).to_numpy()
        )
        if versions.any():
            problems.append(f"{what}: {int(versions.sum())} model versions differ")
    anomalies = int(left["IsAnomaly"].fillna(0).sum()) if "IsAnomaly" in left else 0
    return {"rows": len(left), "anomalies": anomalies, "max_score_difference": worst,
            "problems": problems}  # fmt: skip


def sklearn_reference(extract: Path, store: Path) -> pd.DataFrame:
    """scikit-learn's own predictions of every pair (when the loop is not run)."""
    from scoring.data.extract_folder import list_partitions, read_partition
    from scoring.models.predictor import SensorPredictor
    from scoring.models.store import ModelStore

    predictor = SensorPredictor(ModelStore(store), fast=False)
    frames = [predictor.score(read_partition(p.files, p.keys)) for p in list_partitions(extract)]
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------- the run


@dataclass
class BenchContext:
    spec: FleetSpec
    workers: int
    modes: tuple[str, ...]
    work: Path
    repeat: int = 1
    sample: int = 20
    shard_rows: int = 200_000
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def store_dir(self) -> Path:
        return self.work / "models"

    def extract_dir(self, layout: str) -> Path:
        return self.work / f"extract-{layout}"


def bench(ctx: BenchContext) -> dict[str, Any]:
    """Prepare the fleet, run the chosen modes, check correctness; the results as a dict."""
    from scoring.models.store import ModelStore
    from scoring.models.training import train_models

    spec, results = ctx.spec, ctx.results
    rows = spec.sensors * spec.rows
    results["config"] = {
        "sensors": spec.sensors,
        "rows_per_sensor": spec.rows,
        "rows": rows,
        "train_rows_per_sensor": spec.train_rows,
        "workers": ctx.workers,
        "shard_rows": ctx.shard_rows,
        "repeat": ctx.repeat,
        "modes": list(ctx.modes),
        "seed": spec.seed,
    }
    results["machine"] = _machine()
    prepare: dict[str, Any] = {}
    t0 = time.perf_counter()
    readings, window = fleet_frames(spec)
    for layout in ("shard", "pair"):
        if layout == "shard" or PAIR in ctx.modes or PROCESS in ctx.modes:
            write_extract(window, ctx.extract_dir(layout), layout, ctx.shard_rows)
    prepare["generate_seconds"] = time.perf_counter() - t0
    del window
    t0 = time.perf_counter()
    report = train_models(readings, ModelStore(ctx.store_dir), jobs=ctx.workers)
    prepare["train_and_pack_seconds"] = time.perf_counter() - t0
    if report.failed or len(report.trained) != spec.sensors:
        raise RuntimeError(f"training failed for {len(report.failed)} pairs: {report.failed[:3]}")
    prepare["pack_bytes"] = (ctx.store_dir / "models.pack.arrow").stat().st_size
    del readings
    results["prepare"] = prepare

    problems: list[str] = []
    outputs: dict[str, pd.DataFrame] = {}
    timed = [mode for mode in (LOOP, SHARD, PAIR) if mode in ctx.modes]
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in timed}
    for _ in range(ctx.repeat):  # alternate the timed modes; the fastest of each is reported
        for mode in timed:
            runs[mode].append(_run_mode(ctx, mode, problems))
    for mode, measured in runs.items():
        best = min(measured, key=lambda run: run["seconds"])
        best["all_seconds"] = [run["seconds"] for run in measured]
        results[mode] = _figures(best, rows, spec.sensors)
        outputs[mode] = pd.read_parquet(_output(ctx, mode))
    if KERNEL in ctx.modes:
        payload = {"input": str(ctx.extract_dir("shard")), "models": str(ctx.store_dir)}
        kernel, _ = run_child("child_fleet_kernel", payload)
        kernel["rows_per_second"] = kernel["rows"] / kernel["seconds"]
        results[KERNEL] = kernel
    if PROCESS in ctx.modes:
        rng = np.random.default_rng(spec.seed)
        pairs = spec.pairs()
        picked = sorted(rng.choice(len(pairs), min(ctx.sample, len(pairs)), replace=False))
        sample = [pairs[i] for i in picked]
        measured, frame = mode_process_per_pair(
            ctx.extract_dir("pair"), ctx.store_dir, sample, ctx.work / "out-process"
        )
        per = float(np.mean([m.seconds for m in measured]))
        per_cpu = float(np.mean([m.cpu_seconds for m in measured]))
        run = {
            "seconds": per * spec.sensors / ctx.workers,
            "cpu_seconds": per_cpu * spec.sensors,
            "peak_rss_bytes": max(m.peak_rss_bytes for m in measured),
            "peak_pss_bytes": _max_known(m.peak_pss_bytes for m in measured),
            "extrapolated_from_pairs": len(sample),
            "seconds_per_process": per,
        }
        results[PROCESS] = _figures(run, rows, spec.sensors)
        outputs[PROCESS] = frame
    results["correctness"] = _check(ctx, outputs, problems)
    results["ratios"] = _ratios(results)
    return results


def _output(ctx: BenchContext, mode: str) -> Path:
    return ctx.work / f"out-{mode}" / PREDICTIONS_FILE


def _run_mode(ctx: BenchContext, mode: str, problems: list[str]) -> dict[str, Any]:
    if mode == LOOP:
        out = _output(ctx, mode)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"input": str(ctx.extract_dir("shard")), "models": str(ctx.store_dir),
                   "output": str(out)}  # fmt: skip
        child, measured = run_child("child_sklearn_loop", payload)
        return {
            "seconds": child["seconds"],
            "cpu_seconds": child["cpu_seconds"],
            "one_call_seconds": child["one_call_seconds"],
            "peak_rss_bytes": measured.peak_rss_bytes,
            "peak_pss_bytes": measured.peak_pss_bytes,
            "process_seconds": measured.seconds,
        }
    scored = mode_score(
        ctx.extract_dir(LAYOUT_OF[mode]), ctx.store_dir, _output(ctx, mode).parent, ctx.workers
    )
    if scored["status"] != "succeeded" or scored["items_failed"]:
        problems.append(f"{mode}: {scored['status']}, {scored['items_failed']} items failed")
    measured = scored["measured"]
    return {
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,
        "peak_rss_bytes": measured.peak_rss_bytes,
        "peak_pss_bytes": measured.peak_pss_bytes,
        "mini_batches": scored["mini_batches"],
        "runner_timings": scored["timings"],
    }


def _figures(run: dict[str, Any], rows: int, sensors: int) -> dict[str, Any]:
    seconds = run["seconds"]
    pss = run.pop("peak_pss_bytes", None)
    return {
        **run,
        "rows_per_second": rows / seconds if seconds else math.inf,
        "ms_per_pair": 1e3 * seconds / sensors,
        "core_ms_per_pair": 1e3 * run["cpu_seconds"] / sensors,
        "peak_rss_mib": run.pop("peak_rss_bytes") / 2**20,
        "peak_pss_mib": None if pss is None else pss / 2**20,
    }


def _max_known(values) -> int | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def _check(
    ctx: BenchContext, outputs: dict[str, pd.DataFrame], problems: list[str]
) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    expected = ctx.spec.sensors * ctx.spec.rows
    reference = outputs.get(LOOP)
    if reference is None and any(mode in outputs for mode in (SHARD, PAIR)):
        reference = sklearn_reference(ctx.extract_dir("shard"), ctx.store_dir)
    for mode in (SHARD, PAIR):
        if mode in outputs:
            checks[mode] = compare_predictions(outputs[mode], reference, f"{mode} vs scikit-learn")
            problems.extend(checks[mode]["problems"])
            if len(outputs[mode]) != expected:
                problems.append(f"{mode}: {len(outputs[mode])} rows, expected {expected}")
    if PROCESS in outputs and reference is not None:
        sample = outputs[PROCESS][["Device", "Sensor"]].drop_duplicates()
        subset = reference.merge(sample, on=["Device", "Sensor"], how="inner")
        checks[PROCESS] = compare_predictions(outputs[PROCESS], subset, f"{PROCESS} vs loop")
        problems.extend(checks[PROCESS]["problems"])
    checks["problems"] = problems
    return checks


def _ratios(results: dict[str, Any]) -> dict[str, float]:
    """How many times faster than the loop (wall clock, and per core-second)."""
    ratios: dict[str, float] = {}
    loop = results.get(LOOP)
    for mode in (SHARD, PAIR, PROCESS):
        if loop and mode in results:
            ratios[f"{mode}_vs_loop_wall"] = loop["seconds"] / results[mode]["seconds"]
            ratios[f"{mode}_vs_loop_core_seconds"] = (
                loop["cpu_seconds"] / results[mode]["cpu_seconds"]
            )
    return ratios


def _machine() -> dict[str, Any]:
    import sklearn

    return {
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "load_average_at_start": list(os.getloadavg()),
    }


def _peak_mib(figures: dict[str, Any]) -> float:
    """The process tree's peak memory: PSS where known (shared pages counted once), else RSS."""
    pss = figures.get("peak_pss_mib")
    return figures["peak_rss_mib"] if pss is None else pss


def format_report(results: dict[str, Any]) -> str:
    """The figures as a short text table."""
    config = results["config"]
    lines = [
        f"fleet: {config['sensors']} pairs x {config['rows_per_sensor']} rows = "
        f"{config['rows']} rows scored; {config['workers']} workers; "
        f"load average at start {results['machine']['load_average_at_start'][0]:.2f}",
        f"prepare: trained and packed {config['sensors']} models in "
        f"{results['prepare']['train_and_pack_seconds']:.1f} s "
        f"(pack {results['prepare']['pack_bytes'] / 2**20:.1f} MiB)",
        f"{'mode':<18}{'seconds':>10}{'core-s':>10}{'rows/s':>14}{'core-ms/pair':>14}"
        f"{'peak MiB':>10}{'RSS sum':>10}",
    ]
    for mode in (LOOP, SHARD, PAIR, PROCESS):
        if mode in results:
            r = results[mode]
            note = " (extrapolated)" if mode == PROCESS else ""
            lines.append(
                f"{mode:<18}{r['seconds']:>10.2f}{r['cpu_seconds']:>10.2f}"
                f"{r['rows_per_second']:>14,.0f}{r['core_ms_per_pair']:>14.3f}"
                f"{_peak_mib(r):>10.0f}{r['peak_rss_mib']:>10.0f}{note}"
            )
    lines.append(
        "  peak MiB: the process tree's summed proportional set size (a page the workers "
        "share, like the mapped model pack, counted once); RSS sum counts it in every process"
    )
    if KERNEL in results:
        k = results[KERNEL]
        lines.append(
            f"fleet kernel, 1 core: {k['rows']:,} rows of {k['pairs']:,} pairs in "
            f"{k['seconds'] * 1e3:.1f} ms = {k['rows_per_second'] / 1e6:.1f} M rows/s"
        )
    if LOOP in results:
        lines.append(
            f"  (the loop with labels from its decision values, one scikit-learn call a pair: "
            f"{results[LOOP]['one_call_seconds']:.2f} s)"
        )
    for name, value in results.get("ratios", {}).items():
        lines.append(f"  {name.replace('_', ' ')}: {value:.2f}x")
    problems = results["correctness"]["problems"]
    if problems:
        lines.append("CORRECTNESS FAILED: " + "; ".join(problems))
    else:
        lines.append("correctness: labels identical to scikit-learn's, scores within 1e-9")
    return "\n".join(lines)
