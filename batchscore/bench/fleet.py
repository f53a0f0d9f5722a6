"""The synthetic fleet: S (Device, Sensor) pairs, a training window of T rows per pair and a
scoring window of R rows per pair, written with the product's own extract writer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SENSOR_KINDS = ("temperature", "pressure", "humidity", "vibration")
WINDOW_MINUTES = 5


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
