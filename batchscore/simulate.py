"""``simulate``: raw sensor readings with anomalies injected at a known rate.

Every (Device, Sensor) pair gets a realistic signal::

    value(t) = level + device offset + daily cycle + slow drift + noise

with per-sensor-type level, noise and daily amplitude (see :data:`SENSOR_TYPES`),
a per-device offset, a per-pair phase and drift. Anomalies are injected as short
*events* of consecutive readings, chosen at random per pair so that about
``--anomaly-rate`` of all readings are anomalous:

* ``spike``: 1-3 readings jump up by 8-14 x H,
* ``dip``: 1-3 readings drop by 8-14 x H,
* ``stuck``: 5-15 readings freeze at a constant 5-8 x H away from the level,

where H (the pair's *normal half-range*) is its daily amplitude plus three noise
standard deviations: normal readings stay within about +-H of the level (plus a
small drift). The sizes are chosen so that a single spiking 1-minute reading still
moves a 5-minute average by at least 1.6 x H, beyond the normal range for most of
the day, and that a stuck run dominates every window it touches.

Output: columns ``TS`` (time of each individual reading, naive UTC), ``Device``,
``Sensor``, ``Value`` plus the ground truth ``InjectedAnomaly`` (0/1) and
``AnomalyKind`` (``none``/``spike``/``dip``/``stuck``), sorted by TS, Device,
Sensor; CSV or Parquet by the extension of ``--output``. The same arguments and
seed give the same output, and a device's readings do not depend on how many
other devices are simulated. With ``--eventhub-namespace``/``--eventhub`` the
readings (without the ground-truth columns) are also sent to Event Hubs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.data.schema import ANOMALY_KIND, DEVICE, INJECTED_ANOMALY, SENSOR, TS, VALUE
from scoring.errors import UsageError
from scoring.progress import progress

log = logging.getLogger(__name__)

DEFAULT_START = "2024-01-01T00:00:00"
ANOMALY_KINDS = ("spike", "dip", "stuck")
NORMAL_KIND = "none"

# Event shapes: (min length, max length) in readings, (min, max) magnitude in units of H.
_EVENT_LENGTH = {"spike": (1, 3), "dip": (1, 3), "stuck": (5, 15)}
_EVENT_MAGNITUDE = {"spike": (8.0, 14.0), "dip": (8.0, 14.0), "stuck": (5.0, 8.0)}


@dataclass(frozen=True)
class SensorType:
    """How one kind of sensor behaves (units are the sensor's own)."""

    name: str
    level: float  # typical reading
    noise: float  # standard deviation of reading-to-reading noise
    daily_amplitude: float  # half the peak-to-peak of the daily cycle
    device_spread: float  # standard deviation of the per-device offset
    drift_per_day: float  # standard deviation of the per-pair drift slope


SENSOR_TYPES: tuple[SensorType, ...] = (
    SensorType("temperature", 21.0, 0.3, 1.5, 1.5, 0.15),  # degrees C
    SensorType("humidity", 45.0, 1.0, 5.0, 4.0, 0.5),  # % relative humidity
    SensorType("pressure", 1013.0, 0.5, 2.0, 3.0, 0.2),  # hPa
    SensorType("vibration", 2.0, 0.1, 0.4, 0.3, 0.02),  # mm/s RMS
    SensorType("current", 12.0, 0.2, 1.0, 1.0, 0.05),  # A
    SensorType("voltage", 230.0, 0.8, 3.0, 2.0, 0.1),  # V
    SensorType("flow", 35.0, 0.6, 3.0, 3.0, 0.2),  # l/min
    SensorType("rpm", 1500.0, 6.0, 25.0, 40.0, 2.0),  # revolutions per minute
)


@dataclass(frozen=True)
class SimulationConfig:
    devices: int = 10
    sensors: int = 4
    hours: float = 24.0
    interval_seconds: int = 60
    anomaly_rate: float = 0.01
    seed: int = 42
    start: pd.Timestamp = pd.Timestamp(DEFAULT_START)

    @property
    def readings_per_pair(self) -> int:
        return int(self.hours * 3600 // self.interval_seconds)

    def validate(self) -> SimulationConfig:
        """This config, or a :class:`UsageError` naming the first flag out of range."""
        checks = [
            (self.devices >= 1, "--devices must be at least 1"),
            (self.sensors >= 1, "--sensors must be at least 1"),
            (self.hours > 0, "--hours must be positive"),
            (self.interval_seconds >= 1, "--interval-seconds must be at least 1"),
            (0.0 <= self.anomaly_rate <= 0.5, "--anomaly-rate must be between 0 and 0.5"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if self.readings_per_pair < 1:
            raise UsageError("--hours is shorter than one --interval-seconds: no readings")
        return self


def device_names(count: int) -> list[str]:
    """``dev-001`` ... zero-padded to at least three digits (kept as strings everywhere)."""
    width = max(3, len(str(count)))
    return [f"dev-{i:0{width}d}" for i in range(1, count + 1)]


def sensor_types(count: int) -> list[tuple[str, SensorType]]:
    """The first ``count`` sensors: the catalogue in order, then ``temperature-2`` ..."""
    chosen = []
    for i in range(count):
        kind = SENSOR_TYPES[i % len(SENSOR_TYPES)]
        lap = i // len(SENSOR_TYPES)
        chosen.append((kind.name if lap == 0 else f"{kind.name}-{lap + 1}", kind))
    return chosen


def normal_half_range(kind: SensorType) -> float:
    """H: how far normal readings stray from the level (daily cycle + 3 sigma noise)."""
    return kind.daily_amplitude + 3.0 * kind.noise


def _inject(
    values: np.ndarray, level: float, half_range: float, rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Inject anomaly events into ``values`` in place; return the kind code per reading."""
    n = values.size
    kinds = np.zeros(n, dtype=np.int8)  # 0 = none, else 1 + index in ANOMALY_KINDS
    if rate <= 0 or n == 0:
        return kinds
    mean_length = np.mean([(lo + hi) / 2 for lo, hi in _EVENT_LENGTH.values()])
    for _ in range(rng.poisson(rate * n / mean_length)):
        code = int(rng.integers(len(ANOMALY_KINDS)))
        kind = ANOMALY_KINDS[code]
        lo, hi = _EVENT_LENGTH[kind]
        length = int(rng.integers(lo, hi + 1))
        first = int(rng.integers(0, max(1, n - length + 1)))
        span = slice(first, min(n, first + length))
        magnitude = rng.uniform(*_EVENT_MAGNITUDE[kind]) * half_range
        if kind == "spike":
            values[span] += magnitude
        elif kind == "dip":
            values[span] -= magnitude
        else:  # stuck: the sensor flat-lines at one value far from its level
            values[span] = level + magnitude * rng.choice((-1.0, 1.0))
        kinds[span] = code + 1
    return kinds


def _simulate_device(
    config: SimulationConfig, device_index: int, device: str, times: np.ndarray
) -> pd.DataFrame:
    # One generator per device: a device's data depend only on (seed, device index).
    rng = np.random.default_rng([config.seed, device_index])
    n = times.size
    elapsed_days = np.arange(n) * (config.interval_seconds / 86400.0)
    start = config.start
    hour_of_day = (start.hour + start.minute / 60 + start.second / 3600 + elapsed_days * 24) % 24
    frames = []
    for sensor, kind in sensor_types(config.sensors):
        level = kind.level + rng.normal(0.0, kind.device_spread)
        amplitude = kind.daily_amplitude * rng.uniform(0.8, 1.2)
        peak_hour = rng.uniform(13.0, 17.0)
        daily = amplitude * np.cos(2 * math.pi * (hour_of_day - peak_hour) / 24.0)
        drift = rng.normal(0.0, kind.drift_per_day) * elapsed_days
        values = level + daily + drift + rng.normal(0.0, kind.noise, n)
        half_range = amplitude + 3.0 * kind.noise
        codes = _inject(values, level, half_range, config.anomaly_rate, rng)
        frames.append(
            pd.DataFrame(
                {
                    TS: times,
                    DEVICE: device,
                    SENSOR: sensor,
                    VALUE: np.round(values, 4),
                    INJECTED_ANOMALY: (codes > 0).astype(np.int64),
                    ANOMALY_KIND: np.array((NORMAL_KIND, *ANOMALY_KINDS))[codes],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def simulate_readings(config: SimulationConfig) -> pd.DataFrame:
    """Generate the readings of every (Device, Sensor) pair, sorted by TS, Device, Sensor."""
    times = pd.date_range(
        config.start,
        periods=config.readings_per_pair,
        freq=pd.Timedelta(seconds=config.interval_seconds),
        unit="us",
    ).to_numpy()
    devices = device_names(config.devices)
    frames = [
        _simulate_device(config, index, device, times)
        for index, device in progress(
            list(enumerate(devices)), desc="simulating", unit="device", logger=log
        )
    ]
    readings = pd.concat(frames, ignore_index=True)
    readings[DEVICE] = readings[DEVICE].astype("str")
    readings[SENSOR] = readings[SENSOR].astype("str")
    readings[ANOMALY_KIND] = readings[ANOMALY_KIND].astype("str")
    return readings.sort_values([TS, DEVICE, SENSOR], kind="mergesort", ignore_index=True)
