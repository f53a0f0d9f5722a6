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

Two more defaults, for flags an operator can trust. On the demo fleet (seed 42) they take
precision from 0.155 to 1.0 at a recall of 0.935 (was 0.925); on a fleet made by other means
(``tests/fixtures/other_fleet.py``: sawtooth cycles with heavy-tailed noise, a machine
switching between two states, a wandering level, skewed noise) precision rises from 0.07-0.34
to 0.54-0.94 with every anomaly found (8 seeds):

* ``outlier_mads=3.0``: training rows that are both far from the pair's median (beyond 3
  robust standard deviations, 1.4826 x the median absolute deviation) and in a sparse place
  (outside the densest 90% by a first OneClassSVM, :data:`TRIM_NU`) are left out of the fit.
  The training windows hold the anomalies of their own time; fitted in, a stuck run or a
  spike becomes "normal". Far alone would also cut a second operating state; sparse alone
  keeps stuck runs, whose windows sit together.
* ``range_tolerance=0.3``: each pair's decision threshold is calibrated after the fit so that
  every value inside the range of its kept training rows, widened by 30% of that range on
  each side, is normal. The SVM alone, with ``nu`` 0.02, leaves 2% of its own training rows
  outside and flags low-density stretches *inside* the range: where a daily cycle only
  passes quickly, and where the next day's values wander. Those were 470 of the demo's 556
  flags. The 30% is the drift a model tolerates before its pair is better retrained (the
  run's drift statistic says when). Only the threshold moves (the intercept), never the
  fitted support vectors: the model stays a ``Pipeline(StandardScaler, OneClassSVM)`` that
  scikit-learn, the pack and the fast kernel score alike, and a threshold is only lowered.

The price: a value inside a pair's range is never flagged, even in a gap the training never
visited (between two operating states); an anomaly that small is left to the drift figures.
The cost: fitting a pair takes about 3.5 times as long (the first fit that finds the sparse
rows, then the calibration): 15 ms instead of 4 ms for a pair of 432 rows, fastest of five
runs on a shared machine. With the serializing and compiling that follow (another 16 ms), a
pair's training takes about 1.5 times as long as the reference model's.
Both are off for the reference model: ``batchscore train --nu N --gamma G`` (either given,
neither of these two options) fits exactly scikit-learn's ``OneClassSVM`` on every row.

Pairs with fewer than ``--min-rows`` usable rows are skipped with a warning naming
them; rows whose Value is missing or non-numeric are dropped (and counted).
Training into an existing store replaces the models of the pairs in the input (each
gets a new version) and keeps the others; the manifest is rewritten once, at the end.
"""

from __future__ import annotations

import gc
import logging
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM
from threadpoolctl import threadpool_limits

from scoring.data.schema import (
    DEVICE,
    SENSOR,
    TS,
    contract_columns,
    normalize_key,
    to_float,
    to_naive_utc,
)
from scoring.models import baseline, direct_fit
from scoring.models.kernel import compile_model
from scoring.models.pack import (
    PackRow,
    ParkedArrays,
    pack_row,
    pair_hash,
    park_arrays,
    unpark_arrays,
    write_pack,
)
from scoring.models.store import (
    ModelStore,
    ModelStoreError,
    manifest_line,
    serialize_model,
    write_model_file,
)
from scoring.models.train_params import DEFAULT_MIN_ROWS, FEATURES, TrainParams
from scoring.progress import progress_bar

log = logging.getLogger(__name__)

#: the share of training rows a first fit calls sparse, when trimming past anomalies
TRIM_NU = 0.1
#: 1 / the standard normal's MAD: MAD x this estimates a standard deviation
MAD_TO_SIGMA = 1.4826
#: points on which a 1-feature model's calibrated range is checked
_RANGE_POINTS = 400

# Below this many pairs a process pool costs more than it saves.
_POOL_MIN_PAIRS = 16
_CHUNK_MAX_PAIRS = 500
_CHUNK_MIN_PAIRS = 16
#: up to this many (device x sensor) combinations, pair codes are 32-bit
_MAX_INT32_PAIRS = int(np.iinfo(np.int32).max)


def build_pipeline(params: TrainParams) -> Pipeline:
    """The default per-pair model, unfitted."""
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("svm", OneClassSVM(kernel=params.kernel, gamma=params.gamma, nu=params.nu)),
        ]
    )


def fit_model(
    X: np.ndarray, params: TrainParams, *, direct: bool = True
) -> tuple[Pipeline, np.ndarray]:
    """One pair's model and the rows it was fitted on (see the module docstring).

    ``direct``: fit and ask for decision values without scikit-learn's per-call checks
    (:mod:`scoring.models.direct_fit`: the same models, bit for bit, a fraction of the time);
    false: through scikit-learn's public ``fit`` and ``decision_function`` (the benchmark's
    baseline, and the tests' reference)."""
    kept = _inliers(X, params, direct)
    if len(kept) < 2:  # (almost) every row equal: nothing to trim against
        kept = X
    pipeline = _fit(kept, params, direct)
    if params.range_tolerance is not None:
        _calibrate_range(pipeline, kept, params.range_tolerance, direct)
    return pipeline, kept


def _fit(X: np.ndarray, params: TrainParams, direct: bool) -> Pipeline:
    if not direct:
        return build_pipeline(params).fit(X)
    return direct_fit.fit_checked(lambda: build_pipeline(params), X)


def _decision_values(pipeline: Pipeline, X: np.ndarray, direct: bool) -> np.ndarray:
    return direct_fit.decision_function(pipeline, X) if direct else pipeline.decision_function(X)


def _inliers(X: np.ndarray, params: TrainParams, direct: bool) -> np.ndarray:
    """The rows kept for the fit: all but those both far from the median (beyond
    ``outlier_mads`` robust standard deviations in a feature) and in a sparse place (outside
    the 1 - :data:`TRIM_NU` densest part by a first OneClassSVM). Far alone would cut a second
    operating state (a machine idle most of the day, running the rest); sparse alone keeps
    stuck runs, which sit together. All rows when off."""
    if params.outlier_mads is None:
        return X
    median = column_medians(X)
    spread = MAD_TO_SIGMA * column_medians(np.abs(X - median))
    far = (np.abs(X - median) > params.outlier_mads * np.where(spread > 0, spread, np.inf)).any(
        axis=1
    )
    if not far.any():
        return X
    judge = _fit(X, replace(params, nu=TRIM_NU), direct)
    sparse = np.zeros(len(X), dtype=bool)  # asked of the far rows only: the others stay anyway
    sparse[far] = _decision_values(judge, X[far], direct) < 0
    return X[~(far & sparse)]


def column_medians(X: np.ndarray) -> np.ndarray:
    """``np.median(X, axis=0)`` of finite rows, bit for bit (numpy's ``mean`` of the middle
    value, or of the two middle values: it even turns -0.0 into 0.0), from the one
    partition numpy's ``_median`` makes (the same positions, its last one included, so that
    of equal values such as -0.0 and 0.0 the same one lands in the middle): numpy's general
    median cost 30 to 40 us a call at 288 rows, twice a pair."""
    n = len(X)
    kth = [n // 2 - 1, n // 2, -1] if n % 2 == 0 else [(n - 1) // 2, -1]
    middle = np.partition(X, kth, axis=0)
    return np.mean(middle[(n - 1) // 2 : n // 2 + 1], axis=0)


def _calibrate_range(pipeline: Pipeline, kept: np.ndarray, tolerance: float, direct: bool) -> None:
    """Lower the SVM's threshold (its intercept) until every training row, and for one
    feature every value of the training range widened by ``tolerance`` of its width on each
    side, scores >= 0. Never raises it: the fit's own boundary stays when it is wider."""
    points = kept
    if kept.shape[1] == 1:
        low, high = float(kept.min()), float(kept.max())
        margin = tolerance * (high - low)
        grid = np.linspace(low - margin, high + margin, _RANGE_POINTS).reshape(-1, 1)
        points = np.vstack([kept, grid])
    lowest = float(_decision_values(pipeline, points, direct).min())
    if lowest >= 0:
        return
    svm = pipeline[-1]
    # decision = sum_i c_i K(x, s_i) + intercept_; libsvm reads _intercept_, and
    # offset_ = -intercept_ (scikit-learn's OneClassSVM.fit).
    svm.intercept_ = svm.intercept_ - lowest
    svm._intercept_ = svm._intercept_ - lowest  # noqa: SLF001 - what decision_function uses
    svm.offset_ = -svm._intercept_  # noqa: SLF001


@dataclass
class PairData:
    device: str
    sensor: str
    X: np.ndarray
    times: np.ndarray | None = None  # TS of each row, for the baseline's daily profile


@dataclass
class FitResult:
    """One pair's outcome, made in a worker: the model fitted, compiled, serialized and its
    file written there, so the parent only records manifest entries and builds the pack (a
    parent writing 100,000 files was the one serial part of training)."""

    device: str
    sensor: str
    rows: int
    entry: dict[str, Any] | None = None  # the manifest entry of the file written
    entry_line: str | None = None  # that entry's manifest line (made here, in parallel)
    pack_row: PackRow | None = None  # its row of the pack (None: it does not compile)
    error: str | None = None  # the pair failed (the others go on)
    write_error: str | None = None  # its file could not be written (training stops)


@dataclass
class TrainReport:
    trained: list[tuple[str, str, str, int]] = field(default_factory=list)  # + version, rows
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # + reason
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # + error
    dropped_rows: int = 0


@dataclass(frozen=True)
class _SaveAs:
    """What a worker needs to save the models it fits as the store would."""

    root: Path  # the store's folder
    params: dict[str, object]
    trusted_types: tuple[str, ...]


def _fit_chunk(
    chunk: Sequence[PairData],
    params: TrainParams,
    save_as: _SaveAs,
    folders: set[Path] | None = None,
) -> list[FitResult]:
    """Fit, compile, serialize and write several pairs (one process-pool task); a failing pair
    does not sink the rest.

    scikit-learn's input and parameter checks are skipped here (``assume_finite``,
    ``skip_parameter_validation``): at 288 rows they cost about a third of a fit, and both
    were done once for all pairs (:meth:`TrainParams.validate`, and :func:`train_models`
    drops every row whose value is not finite). The fitted model is the same."""
    folders = set() if folders is None else folders  # the store's folders already made
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        return [_fit_one(pair, params, save_as, folders) for pair in chunk]


def _fit_one(
    pair: PairData, params: TrainParams, save_as: _SaveAs, folders: set[Path]
) -> FitResult:
    result = FitResult(pair.device, pair.sensor, len(pair.X))
    try:
        pipeline, _ = fit_model(pair.X, params)
        compiled = compile_model(pipeline)
        saved = serialize_model(
            pair.device,
            pair.sensor,
            pipeline,
            training_rows=len(pair.X),
            params=save_as.params,
            features=FEATURES,
            trusted_types=save_as.trusted_types,
            answers=direct_fit.Answers(pipeline) if direct_fit.supports(pipeline) else None,
        )
        pair_baseline = baseline.baseline_of(pair.X, pair.times)
        saved.entry[baseline.ENTRY_KEY] = pair_baseline.to_dict()
        if compiled is not None:  # the pack's row made here, in parallel, not in the parent
            result.pack_row = pack_row(compiled, pair_baseline.packed())
    except Exception as exc:  # noqa: BLE001 - reported per pair, the others go on
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    try:
        write_model_file(save_as.root, saved, durable=False, folders=folders)
    except ModelStoreError as exc:  # a full or read-only disk: not this pair's fault
        result.write_error = str(exc)
        return result
    result.entry, result.entry_line = saved.entry, manifest_line(saved.entry)
    return result


class _Quiet:
    """A progress bar that shows nothing (``--no-progress``, library calls)."""

    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _ranges(total: int, jobs: int) -> list[tuple[int, int]]:
    """Cut ``total`` pairs into tasks for ``jobs`` processes: each a share of what remains
    (a quarter of a process's part, at most :data:`_CHUNK_MAX_PAIRS`, at least
    :data:`_CHUNK_MIN_PAIRS`), so the tasks shrink toward the end and the processes finish
    together instead of one fitting a last large chunk while the other waits."""
    ranges, start = [], 0
    while start < total:
        size = min(_CHUNK_MAX_PAIRS, max(_CHUNK_MIN_PAIRS, (total - start) // (jobs * 4)))
        ranges.append((start, min(total, start + size)))
        start += size
    return ranges


#: a training process's work, set once when it starts (:func:`_start_worker`)
_WORK: tuple[Sequence[PairData], TrainParams, _SaveAs, Path, set[Path]] | None = None


def _start_worker(
    pairs: Sequence[PairData], params: TrainParams, save_as: _SaveAs, parking: Path
) -> None:
    """A training process starts holding every pair: a forked process inherits them (no copy,
    nothing pickled), another start method receives them once. Its tasks then name a range.
    Before, each task carried its pairs' rows through the pool's one pipe (2.3 MB a task of
    500 pairs x 288 rows), and the parent's thread feeding that pipe waited for the GIL the
    parent's result handling held: a process finished a task and sat idle up to 0.3 s."""
    global _WORK  # noqa: PLW0603 - one per process, set before its first task
    _WORK = (pairs, params, save_as, parking, set())
    _one_thread()


def _fit_range(start: int, stop: int) -> tuple[list[FitResult], ParkedArrays | None]:
    """One pool task: the pairs ``start:stop`` of the process's work; their pack rows' arrays
    parked in a file of the run's ``parking`` folder (:func:`park_arrays`), not pickled."""
    if _WORK is None:
        raise RuntimeError("a training process was given a task before its pairs")
    pairs, params, save_as, parking, folders = _WORK
    results = _fit_chunk(pairs[start:stop], params, save_as, folders)
    return results, park_arrays(_pack_rows(results), parking / f"{start}.f8")


def _pack_rows(results: list[FitResult]) -> list[PackRow]:
    return [result.pack_row for result in results if result.pack_row is not None]


def _unpark(results: list[FitResult], parked: ParkedArrays) -> None:
    try:
        unpark_arrays(_pack_rows(results), parked)
    except OSError as exc:  # the temporary file went away (a cleaner of the temporary folder)
        raise ModelStoreError(
            f"cannot read back the compiled models a worker left in {parked.path} ({exc}); "
            "no manifest was written: run the training again"
        ) from exc


@contextmanager
def _frozen_objects() -> Iterator[None]:
    """The objects made so far left out of garbage collection while the workers forked from
    this process run (``gc.freeze``, as CPython's documentation of it advises before a fork):
    a collection in a worker writes to every object it examines, and each page written is
    copied out of what the worker shares with this process. Collected again afterwards. A
    process that froze objects itself (an application server forking its own workers) is left
    as it is: unfreezing would undo its freeze."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _one_thread() -> None:
    """A training process's BLAS and OpenMP pools get one thread. Their work here is tiny (a
    pair's least squares, the compile's small products): a pool of threads per call cost more
    than the call, and with a process per core the threads fought the other workers for the
    cores (5,000 pairs x 288 rows on two workers: fitting took 9.4 s with the pools at their
    default size, 6.8 s with one thread; sys time fell by half)."""
    threadpool_limits(limits=1)


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
            folders: set[Path] = set()
            with threadpool_limits(limits=1):  # see _one_thread
                for pair in pairs:
                    yield from _fit_chunk((pair,), params, save_as, folders)
                    bar.update()
            return
        # Tasks of a few hundred pairs at most (_ranges): a task's results wait whole in its
        # worker (a quarter of a worker's share of 100,000 pairs was 0.4 GB in flight). The
        # pairs in pack order, so that a task's rows, parked in one file, are neighbours in
        # the pack and the task's memory goes as the pack is written.
        pairs = sorted(pairs, key=lambda pair: pair_hash(pair.device, pair.sensor))
        with (
            _frozen_objects(),
            tempfile.TemporaryDirectory(
                prefix="batchscore-train-", ignore_cleanup_errors=True
            ) as parking,
            ProcessPoolExecutor(
                max_workers=jobs,
                initializer=_start_worker,
                initargs=(pairs, params, save_as, Path(parking)),
            ) as pool,
        ):
            futures = [pool.submit(_fit_range, *span) for span in _ranges(len(pairs), jobs)]
            try:
                for future in as_completed(futures):
                    results, parked = future.result()
                    if parked is not None:
                        _unpark(results, parked)
                    yield from results
                    bar.update(len(results))
            finally:  # stopped early (a write error, Ctrl-C): the queued tasks are not started
                for future in futures:
                    future.cancel()


def prepare_pairs(
    readings: pd.DataFrame, *, source: str = "readings", min_rows: int = DEFAULT_MIN_ROWS
) -> tuple[list[PairData], TrainReport]:
    """The pairs to fit from ``readings`` (the column contract, names matched
    case-insensitively, values typed as :func:`~scoring.data.schema.normalize_readings` types
    them), in (Device, Sensor) order, and the report so far: the rows dropped (a missing
    Device/Sensor, a missing or non-numeric feature) and the pairs skipped (fewer than
    ``min_rows`` rows). Raises ``ValueError`` naming ``source`` if required columns are missing.

    The frame is read, never copied: the keys are normalized once per distinct value and the
    rows ordered by one stable sort of integer pair codes, so each pair's rows are a slice of
    one array (at 100,000 pairs x 288 rows, normalizing the whole frame and grouping it took
    11 s and doubled its memory). Apart from :func:`train_pairs` so that a caller can let its
    frame go once the pairs are made."""
    report = TrainReport()
    frame = contract_columns(readings, source, required=(DEVICE, SENSOR, *FEATURES))
    devices, device_names = _key_codes(frame[DEVICE])
    sensors, sensor_names = _key_codes(frame[SENSOR])
    columns = [
        to_float(frame[name]).to_numpy(dtype="float64", na_value=np.nan) for name in FEATURES
    ]
    usable = (devices >= 0) & (sensors >= 0)
    for column in columns:
        usable &= np.isfinite(column)
    # The device codes become the pair codes in place when every pair's code fits in their
    # 32 bits (each copy of a 28.8-million-row int64 column is 230 MB to fill).
    fits = len(device_names) * max(1, len(sensor_names)) <= _MAX_INT32_PAIRS
    pair_codes = devices if fits else devices.astype(np.int64)
    pair_codes *= len(sensor_names)
    pair_codes += sensors
    del devices, sensors
    report.dropped_rows = int(len(usable) - np.count_nonzero(usable))
    rows = None  # all of them, in order
    if report.dropped_rows:
        log.warning(
            "%s: dropped %d of %d rows with a missing Device/Sensor or a missing or non-numeric %s",
            source,
            report.dropped_rows,
            len(frame),
            "/".join(FEATURES),
        )
        rows = np.flatnonzero(usable)
        pair_codes = pair_codes[rows]
    del usable
    if (pair_codes[1:] < pair_codes[:-1]).any():  # not already grouped by pair, in order
        by_pair = np.argsort(pair_codes, kind="stable")  # a pair's rows keep the input's order
        rows = by_pair if rows is None else rows[by_pair]
        pair_codes = pair_codes[by_pair]
        del by_pair
    # Every pair's rows in one array, a pair a slice of it (of the frame's own column when
    # the input was already in pair order: nothing copied).
    values = _gathered(columns, rows)
    stamps = None
    if TS in frame.columns:
        stamps = to_naive_utc(frame[TS]).to_numpy()
        stamps = stamps if rows is None else stamps[rows]
    del rows, columns
    starts = np.flatnonzero(pair_codes[1:] != pair_codes[:-1]) + 1
    starts = np.concatenate([[0], starts]) if len(pair_codes) else starts
    ends = np.append(starts[1:], len(pair_codes))
    # a pair with a row without its time has no daily profile for its baseline
    untimed = set()
    if stamps is not None:
        untimed = set(
            (np.searchsorted(starts, np.flatnonzero(np.isnat(stamps)), "right") - 1).tolist()
        )
    pairs = []
    bounds = zip(starts.tolist(), ends.tolist(), pair_codes[starts].tolist(), strict=True)
    for index, (start, end, code) in enumerate(bounds):
        device = str(device_names[code // len(sensor_names)])
        sensor = str(sensor_names[code % len(sensor_names)])
        if end - start < min_rows:
            reason = f"{end - start} usable rows, fewer than --min-rows {min_rows}"
            log.warning("skipped Device=%r Sensor=%r: %s", device, sensor, reason)
            report.skipped.append((device, sensor, reason))
            continue
        times = None if stamps is None or index in untimed else stamps[start:end]
        pairs.append(PairData(device, sensor, values[start:end], times))
    return pairs, report


def _gathered(columns: list[np.ndarray], rows: np.ndarray | None) -> np.ndarray:
    """The feature matrix of ``rows`` (None: all, as they are); one feature is a view."""
    if len(columns) == 1:
        column = columns[0] if rows is None else columns[0][rows]
        return column.reshape(-1, 1)
    return np.column_stack([column if rows is None else column[rows] for column in columns])


def _key_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code (-1: missing) and, by code, the key (normalized, in sorted order): the
    normalization runs once per distinct value, not once per row. A categorical column (a
    file read with ``keys_as_categories``) has its codes already: nothing is hashed per row
    (pandas' factorize of 28.8 million codes took 1 s a column)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), values.cat.categories
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    keys = normalize_key(pd.Series(np.asarray(uniques, dtype=object), dtype=object))
    final, names = pd.factorize(keys, sort=True, use_na_sentinel=True)
    to_final = np.append(final, -1).astype(np.int32)  # code -1 stays -1
    return to_final[codes], np.asarray(names, dtype=object)


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
    params = (params or TrainParams()).validate()  # before the pairs are prepared
    pairs, report = prepare_pairs(readings, source=source, min_rows=min_rows)
    return train_pairs(pairs, report, store, params, jobs=jobs, progress=progress)


def train_pairs(
    pairs: list[PairData],
    report: TrainReport,
    store: ModelStore,
    params: TrainParams,
    *,
    jobs: int = 1,
    progress: bool = False,
) -> TrainReport:
    """Fit and save a model for each of ``pairs`` (:func:`prepare_pairs`), recording them in
    ``report``; the manifest is written once, then the pack."""
    params = params.validate()
    save_as = _SaveAs(
        root=store.root, params=params.recorded(), trusted_types=tuple(store.trusted_types)
    )
    compiled: dict[tuple[str, str], tuple[str, PackRow | None]] = {}
    for result in fit_pairs(pairs, params, save_as, jobs=jobs, progress=progress):
        if result.write_error is not None:
            raise ModelStoreError(result.write_error)
        if result.entry is None:
            log.warning(
                "training failed for Device=%r Sensor=%r (%d rows): %s",
                result.device,
                result.sensor,
                result.rows,
                result.error,
            )
            report.failed.append((result.device, result.sensor, str(result.error)))
            continue
        version = store.record_written(result.entry, write_manifest=False, line=result.entry_line)
        report.trained.append((result.device, result.sensor, version, result.rows))
        # The pack is built from the models just fitted (no file read back); the sha256 of the
        # file each was saved as is what the pack checks against the manifest.
        compiled[(result.device, result.sensor)] = (result.entry["sha256"], result.pack_row)
    if report.trained:
        store.write_manifest()
        _write_pack(store, compiled)
    return report


def _write_pack(
    store: ModelStore, compiled: dict[tuple[str, str], tuple[str, PackRow | None]]
) -> None:
    """The pack (one memory-mapped file of every compiled model) is what makes scoring fast;
    built here so a freshly trained store scores through the exact fast kernel at once."""
    summary = write_pack(store, compiled=compiled)
    log.info(
        "packed %d models into %s (%d loaded from their files at scoring time instead)",
        summary.packed,
        summary.path,
        len(summary.not_compiled) + len(summary.failed),
    )
