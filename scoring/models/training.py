"""Training: one anomaly model per (Device, Sensor) (the `batchscore train` command).

Each model is ``Pipeline(StandardScaler(), OneClassSVM(kernel, gamma, nu))`` fitted
on the pair's aggregated readings (the features in :data:`FEATURES`).

Default hyperparameters, and why:

* ``kernel="rbf"``: a sensor's normal range is a smooth, possibly multi-modal
  region; the RBF kernel draws a boundary around it.
* ``nu=0.02``: an upper bound on the fraction of training rows treated as outliers
  and a lower bound on the fraction of support vectors. A small nu fits the
  assumption that readings are mostly normal and keeps the support-vector count
  low, and scoring cost grows linearly with it.
* ``gamma=0.1`` (on standardised values; kernel width ``1/sqrt(2*0.1)`` = 2.2
  standard deviations), not scikit-learn's ``"scale"`` (= 1 for one standardised
  feature). Measured on one Gaussian feature (100 to 5000 training rows, nu 0.02):
  with ``"scale"`` the decision function is nearly flat at 0 across the normal
  range and 12-32% of fresh *normal* readings are flagged, with 27-358 support
  vectors; with 0.1, 2-7.5% are flagged with 4-104 support vectors, and readings
  beyond 3 standard deviations are still all flagged. On bimodal, log-normal,
  uniform and sinusoidal data both settings flag about 2%.

Pairs with fewer than ``--min-rows`` usable rows are skipped with a warning naming
them; rows whose Value is missing or non-numeric are dropped (and counted).
Training into an existing store replaces the models of the pairs in the input (each
gets a new version) and keeps the others; the manifest is rewritten once, at the end.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from scoring.data.schema import (
    DEVICE,
    SENSOR,
    VALUE,
    normalize_readings,
)
from scoring.models.kernel import FastOneClassSVM, compile_model
from scoring.models.store import ModelStore, SerializedModel, serialize_model
from scoring.progress import progress_bar

log = logging.getLogger(__name__)

# The model inputs, in order. One place, so the feature set can grow (e.g. MinValue).
FEATURES: tuple[str, ...] = (VALUE,)

DEFAULT_KERNEL = "rbf"
DEFAULT_GAMMA: str | float = 0.1
DEFAULT_NU = 0.02
DEFAULT_MIN_ROWS = 10
KERNELS = ("rbf", "linear", "poly", "sigmoid")
SQL_TABLE = "SensorReadings"

# Below this many pairs a process pool costs more than it saves.
_POOL_MIN_PAIRS = 16


@dataclass(frozen=True)
class TrainParams:
    """OneClassSVM hyperparameters (recorded per model in the manifest)."""

    kernel: str = DEFAULT_KERNEL
    gamma: str | float = DEFAULT_GAMMA
    nu: float = DEFAULT_NU

    def validate(self) -> TrainParams:
        """Return self, or raise ``ValueError`` naming the flag of the bad value."""
        if self.kernel not in KERNELS:
            raise ValueError(f"--kernel {self.kernel!r}: use one of {', '.join(KERNELS)}")
        if not 0.0 < self.nu <= 1.0:
            raise ValueError(f"--nu {self.nu}: must be in (0, 1]")
        if isinstance(self.gamma, str):
            if self.gamma not in ("scale", "auto"):
                raise ValueError(f"--gamma {self.gamma!r}: use scale, auto or a positive number")
        elif not (math.isfinite(self.gamma) and self.gamma > 0):
            raise ValueError(f"--gamma {self.gamma}: must be a positive number")
        return self


def build_pipeline(params: TrainParams) -> Pipeline:
    """The default per-pair model, unfitted."""
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("svm", OneClassSVM(kernel=params.kernel, gamma=params.gamma, nu=params.nu)),
        ]
    )


@dataclass
class PairData:
    device: str
    sensor: str
    X: np.ndarray


@dataclass
class FitResult:
    """One pair's outcome, made in a worker: the model serialized and compiled there, so the
    parent only writes files (at 100,000 pairs the serializing is most of the work)."""

    device: str
    sensor: str
    rows: int
    saved: SerializedModel | None = None
    compiled: FastOneClassSVM | None = None  # as arrays: the pack is built from them
    error: str | None = None


@dataclass
class TrainReport:
    trained: list[tuple[str, str, str, int]] = field(default_factory=list)  # + version, rows
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # + reason
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # + error
    dropped_rows: int = 0


@dataclass(frozen=True)
class _SaveAs:
    """What a worker needs to serialize the models it fits as the store would."""

    params: dict[str, object]
    trusted_types: tuple[str, ...]


def _fit_chunk(chunk: Sequence[PairData], params: TrainParams, save_as: _SaveAs) -> list[FitResult]:
    """Fit, serialize and compile several pairs (one process-pool task); a failing pair does
    not sink the rest.

    scikit-learn's input and parameter checks are skipped here (``assume_finite``,
    ``skip_parameter_validation``): at 288 rows they cost about a third of a fit, and both
    were done once for all pairs (:meth:`TrainParams.validate`, and :func:`train_models`
    drops every row whose value is not finite). The fitted model is the same."""
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        return [_fit_one(pair, params, save_as) for pair in chunk]


def _fit_one(pair: PairData, params: TrainParams, save_as: _SaveAs) -> FitResult:
    result = FitResult(pair.device, pair.sensor, len(pair.X))
    try:
        pipeline = build_pipeline(params).fit(pair.X)
        result.saved = serialize_model(
            pair.device,
            pair.sensor,
            pipeline,
            training_rows=len(pair.X),
            params=save_as.params,
            features=FEATURES,
            trusted_types=save_as.trusted_types,
        )
        result.compiled = compile_model(pipeline)
    except Exception as exc:  # noqa: BLE001 - reported per pair, the others go on
        result.error = f"{type(exc).__name__}: {exc}"
    return result


class _Quiet:
    """A progress bar that shows nothing (``--no-progress``, library calls)."""

    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _chunks(items: Sequence[PairData], size: int) -> Iterator[Sequence[PairData]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def fit_pairs(
    pairs: Sequence[PairData],
    params: TrainParams,
    save_as: _SaveAs,
    *,
    jobs: int,
    progress: bool = False,
) -> Iterator[FitResult]:
    """Fit every pair, in a process pool when it pays off; yields results as they finish."""
    bar = progress_bar(len(pairs), desc="train", unit="model", logger=log) if progress else _Quiet()
    with bar:
        if jobs <= 1 or len(pairs) < _POOL_MIN_PAIRS:
            for chunk in _chunks(pairs, 1):
                yield from _fit_chunk(chunk, params, save_as)
                bar.update(len(chunk))
            return
        # A few chunks per worker: balances uneven pairs without a task per model.
        size = max(1, math.ceil(len(pairs) / (jobs * 4)))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [
                pool.submit(_fit_chunk, chunk, params, save_as) for chunk in _chunks(pairs, size)
            ]
            for future in as_completed(futures):
                results = future.result()
                yield from results
                bar.update(len(results))


def split_pairs(readings: pd.DataFrame, *, min_rows: int, report: TrainReport) -> list[PairData]:
    """Per-pair feature matrices; pairs with too few rows are recorded as skipped."""
    pairs = []
    # One conversion of the features and one grouping of row positions for every pair (a
    # frame per group cost about 0.1 ms a pair: 10 s at 100,000 pairs).
    features = readings.loc[:, list(FEATURES)].to_numpy(dtype="float64")
    groups = readings.groupby([DEVICE, SENSOR], sort=True).indices
    for (device, sensor), positions in groups.items():
        if len(positions) < min_rows:
            reason = f"{len(positions)} usable rows, fewer than --min-rows {min_rows}"
            log.warning("skipped Device=%r Sensor=%r: %s", device, sensor, reason)
            report.skipped.append((device, sensor, reason))
            continue
        pairs.append(PairData(str(device), str(sensor), features[positions]))
    return pairs


def train_models(
    readings: pd.DataFrame,
    store: ModelStore,
    params: TrainParams | None = None,
    *,
    source: str = "readings",
    jobs: int = 1,
    min_rows: int = DEFAULT_MIN_ROWS,
    progress: bool = False,
) -> TrainReport:
    """Train and save one model per (Device, Sensor) of ``readings``; manifest written once.

    ``readings`` follows the column contract (names matched case-insensitively).
    Raises ``ValueError`` naming ``source`` if required columns are missing.
    """
    params = (params or TrainParams()).validate()
    report = TrainReport()
    frame = normalize_readings(readings, source, required=(DEVICE, SENSOR, *FEATURES))
    bad = frame[DEVICE].isna() | frame[SENSOR].isna()
    for feature in FEATURES:
        bad |= ~np.isfinite(frame[feature].to_numpy(dtype="float64", na_value=np.nan))
    report.dropped_rows = int(bad.sum())
    if report.dropped_rows:
        log.warning(
            "%s: dropped %d of %d rows with a missing Device/Sensor or a missing or non-numeric %s",
            source,
            report.dropped_rows,
            len(frame),
            "/".join(FEATURES),
        )
        frame = frame.loc[~bad]
    pairs = split_pairs(frame, min_rows=min_rows, report=report)
    save_as = _SaveAs(params=asdict(params), trusted_types=tuple(store.trusted_types))
    compiled: dict[tuple[str, str], tuple[str, FastOneClassSVM | None]] = {}
    for result in fit_pairs(pairs, params, save_as, jobs=jobs, progress=progress):
        if result.saved is None:
            log.warning(
                "training failed for Device=%r Sensor=%r (%d rows): %s",
                result.device,
                result.sensor,
                result.rows,
                result.error,
            )
            report.failed.append((result.device, result.sensor, str(result.error)))
            continue
        version = store.write_serialized(result.saved, write_manifest=False)
        report.trained.append((result.device, result.sensor, version, result.rows))
        # The pack is built from the models just fitted (no file read back); the sha256 of the
        # file each was saved as is what the pack checks against the manifest.
        compiled[(result.device, result.sensor)] = (result.saved.entry["sha256"], result.compiled)
    if report.trained:
        store.write_manifest()
        _write_pack(store, compiled)
    return report


def _write_pack(
    store: ModelStore, compiled: dict[tuple[str, str], tuple[str, FastOneClassSVM | None]]
) -> None:
    """The pack (one memory-mapped file of every compiled model) is what makes scoring fast;
    built here so a freshly trained store scores through the exact fast kernel at once."""
    from scoring.models.pack import write_pack

    summary = write_pack(store, compiled=compiled)
    log.info(
        "packed %d models into %s (%d loaded from their files at scoring time instead)",
        summary.packed,
        summary.path,
        len(summary.not_compiled) + len(summary.failed),
    )
