"""Score readings with each (Device, Sensor) pair's model.

``SensorPredictor(store).score(partition)`` answers every input row with the prediction
columns of the contract: ``TS, Device, Sensor, Value, Score, IsAnomaly, ModelVersion, Status``.

* ``Score`` is the model's ``decision_function`` (negative = outside the learned
  normal region) and ``IsAnomaly`` is 1 exactly where the model's ``predict`` says
  -1. For the default OneClassSVM both come from one pass: libsvm labels a row
  +1 when its decision value is strictly positive, -1 otherwise (zero included).
* Every model is loaded once per predictor (cached); a pair without a model raises
  :class:`scoring.models.store.ModelNotFoundError` naming it.
* Rows whose Value (or TS, Device, Sensor) is missing or non-numeric are answered with a
  ``Status`` saying why (``invalid_value``, ``missing_ts``, ``missing_key``) and no score; one
  warning per partition names it and the count.

The scoring arithmetic sits behind :meth:`SensorPredictor._decide`, the seam where
a faster kernel can be plugged in.

Fast path (:mod:`scoring.models.kernel`, :mod:`scoring.models.pack`): when the store holds a
current pack (``models.pack.arrow``, built by :func:`scoring.models.pack.write_pack`),
its models are served from it, without reading their model files, and scored by the
compiled kernel: labels identical to scikit-learn's, scores within 1e-9. ``fast=True``
also compiles models loaded from their files; ``fast=False`` keeps scikit-learn for all.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from scoring.data.schema import (
    DEVICE,
    IS_ANOMALY,
    MODEL_VERSION,
    READING_COLUMNS,
    SCORE,
    SENSOR,
    STATUS,
    STATUS_OK,
    TS,
    VALUE,
    empty_predictions,
    normalize_readings,
)
from scoring.errors import UsageError
from scoring.models import fleet_kernel
from scoring.models.kernel import FastOneClassSVM, compile_model
from scoring.models.pack import PackedStore
from scoring.models.store import LoadedModel, ModelNotFoundError, ModelStore, ModelStoreError

#: what a pair without a usable model does to its mini-batch (see SensorPredictor)
MODEL_ERROR_MODES = ("raise", "status", "no_model")

log = logging.getLogger(__name__)


class PartitionError(UsageError, ValueError):
    """A partition cannot be scored at all (e.g. a required column is missing)."""


@dataclass
class ScoringStats:
    """Running totals of one predictor (logged by the entry script's shutdown)."""

    partitions: int = 0
    rows_in: int = 0
    rows_scored: int = 0
    rows_unscored: int = 0
    anomalies: int = 0


def _in_contract_form(frame: pd.DataFrame) -> bool:
    """True when :func:`normalize_readings` would change nothing the predictor reads.

    That is the usual partition (from the runner or Azure ML): the reading columns spelled
    canonically and only once (case-insensitively), a naive datetime ``TS``, a float64
    ``Value``, and one stripped, non-blank ``Device`` and ``Sensor`` string for all rows.
    """
    lowered = [str(column).lower() for column in frame.columns]
    for column in READING_COLUMNS:
        if column not in frame.columns or lowered.count(column.lower()) != 1:
            return False
    if not pd.api.types.is_datetime64_dtype(frame[TS].dtype) or frame[VALUE].dtype != np.float64:
        return False
    if frame.empty:
        return False
    for key in (DEVICE, SENSOR):
        column = frame[key]
        first = column.iat[0]
        if not isinstance(first, str) or not first or first.strip() != first:
            return False
        if column.nunique(dropna=False) != 1:
            return False
    return True


def _same_strings(column: pd.Series, value: str) -> object:
    """The group's own key column when it is already text (all rows equal ``value``): reusing
    it saves building a new string column per partition; else the value, broadcast."""
    return column.array if isinstance(column.dtype, pd.StringDtype) else value


def _is_default_model(estimator: object) -> bool:
    """True for a OneClassSVM, bare or as the last step of a Pipeline."""
    from sklearn.pipeline import Pipeline  # here: workers served by the pack never import it
    from sklearn.svm import OneClassSVM

    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    return isinstance(final, OneClassSVM)


class SensorPredictor:
    """Scores partitions of readings with the model store's per-pair models."""

    def __init__(
        self,
        store: ModelStore | str | os.PathLike[str],
        *,
        fast: bool | None = None,
        on_model_error: str = "raise",
    ) -> None:
        if on_model_error not in MODEL_ERROR_MODES:
            raise ValueError(
                f"on_model_error must be one of {', '.join(MODEL_ERROR_MODES)}, "
                f"not {on_model_error!r}"
            )
        #: "raise": a pair without a usable model fails its mini-batch;
        #: "status": its rows come back as no_model / model_error (many pairs per mini-batch);
        #: "no_model": a missing model is answered no_model (retrying cannot make one appear),
        #: a damaged one raises (a retry may read it whole)
        self.on_model_error = on_model_error
        self.store = store if isinstance(store, ModelStore) else ModelStore(store)
        self._models: dict[tuple[str, str], LoadedModel] = {}
        self.stats = ScoringStats()
        self.fast = fast
        self._packed = PackedStore.for_store(self.store) if fast is not False else None

    def model(self, device: str, sensor: str) -> LoadedModel:
        """The pair's model, loaded on first use and cached."""
        key = (device, sensor)
        model = self._models.get(key)
        if model is None:
            model = self._load(device, sensor)
            self._models[key] = model
        return model

    def _load(self, device: str, sensor: str) -> LoadedModel:
        """From the pack if it holds the pair (no file read), else from the model's file."""
        if self._packed is not None:
            packed = self._packed.load(self.store, device, sensor)
            if packed is not None:
                return packed
        model = self.store.load(device, sensor)
        compiled = compile_model(model.pipeline) if self.fast else None
        if compiled is not None:
            return replace(model, pipeline=compiled)
        return model

    @property
    def packed(self) -> PackedStore | None:
        """The store's current pack, when it serves the models."""
        return self._packed

    @property
    def models_loaded(self) -> int:
        return len(self._models)

    def _decide(self, model: LoadedModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decision values and labels (+1 normal, -1 anomaly) of ``X`` (n_rows, n_features)."""
        estimator = model.pipeline
        if isinstance(estimator, FastOneClassSVM):
            return estimator.decide(X)
        scores = np.asarray(estimator.decision_function(X), dtype="float64").ravel()
        if _is_default_model(estimator):
            labels = np.where(scores > 0, 1, -1)  # libsvm's one-class rule, as in predict()
        else:
            labels = np.asarray(estimator.predict(X)).ravel()
        return scores, labels

    def score(
        self,
        partition: pd.DataFrame,
        *,
        name: str | None = None,
        on_model_error: str | None = None,
    ) -> pd.DataFrame:
        """One prediction row per row of ``partition`` (any number of pairs), in its order.

        Rows that cannot be scored come back with a ``Status`` saying why (and no Score);
        a pair without a usable model raises (:class:`ModelNotFoundError`, ...) unless
        ``on_model_error`` (this call's, else the predictor's) is ``"status"``. ``name`` labels
        the partition in log messages.
        """
        label = name or "partition"
        errors = on_model_error or self.on_model_error
        try:
            one_pair = _in_contract_form(partition)
            if one_pair:
                frame = partition  # nothing to normalise: saves milliseconds per partition
            else:
                frame = normalize_readings(partition, label, required=READING_COLUMNS)
        except ValueError as exc:
            raise PartitionError(str(exc)) from exc
        self.stats.partitions += 1
        self.stats.rows_in += len(frame)
        if frame.empty:
            return empty_predictions()
        if one_pair:  # one Device and one Sensor for all rows, checked above
            device, sensor = frame[DEVICE].iat[0], frame[SENSOR].iat[0]
            result = self._score_pair(device, sensor, frame, name, errors)
        else:
            devices, sensors = frame[DEVICE].to_numpy(), frame[SENSOR].to_numpy()
            if (devices == devices[0]).all() and (sensors == sensors[0]).all():
                # The usual case (one partition = one pair): no groupby overhead.
                result = self._score_pair(devices[0], sensors[0], frame, name, errors)
            else:
                result = self._score_many(frame, label, errors)
        ok = (result[STATUS] == STATUS_OK).to_numpy()
        self.stats.rows_scored += int(ok.sum())
        self.stats.rows_unscored += len(result) - int(ok.sum())
        self.stats.anomalies += int(result[IS_ANOMALY].sum())
        return result

    def _score_many(self, frame: pd.DataFrame, label: str, errors: str) -> pd.DataFrame:
        """Many pairs (a shard): every row of every packed 1-feature model in one vectorised
        pass (:mod:`scoring.models.fleet_kernel`), the rest pair by pair; rows in input order."""
        runs = _Runs.of(frame)
        rows = self._packed_rows(runs)
        values = frame[VALUE]
        values = (
            values.to_numpy()
            if values.dtype == np.float64
            else pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        )
        has_ts = frame[TS].notna().to_numpy()
        usable = np.isfinite(values) & has_ts
        out = _Answers(len(frame), values)
        in_fleet = np.repeat(rows >= 0, runs.lengths)
        chosen = in_fleet & usable
        if chosen.any():
            self._score_fleet(runs, rows, chosen, values, out)
        fleet_runs = np.flatnonzero(rows >= 0)
        out.set_runs(runs, fleet_runs, rows, self._packed)
        unusable = in_fleet & ~usable
        out.status.put(unusable & has_ts, "invalid_value")
        out.status.put(unusable & ~has_ts, "missing_ts")
        if unusable.any():
            self._unscored(
                label, int(unusable.sum()), len(frame), "a missing TS or a missing or "
                "non-numeric Value"
            )  # fmt: skip
        for run in np.flatnonzero(rows < 0):
            start, stop = runs.bounds(run)
            part = frame.iloc[start:stop]
            answer = self._score_pair(runs.devices[run], runs.sensors[run], part, label, errors)
            out.take(start, stop, answer)
        return out.frame(frame)

    def _packed_rows(self, runs: _Runs) -> np.ndarray:
        """Each run's pack row when the fleet kernel can score it (packed, verified, one feature
        with a table), else -1."""
        rows = np.full(len(runs.starts), -1, dtype=np.int64)
        pack = self._packed
        if pack is None:
            return rows
        keyed = ~(pd.isna(runs.devices) | pd.isna(runs.sensors))
        if keyed.any():
            rows[keyed] = pack.rows(
                [str(d) for d in runs.devices[keyed]], [str(s) for s in runs.sensors[keyed]]
            )
        found = np.flatnonzero(rows >= 0)
        if found.size:
            found = found[fleet_kernel.table_models(pack, rows[found])]
            keep = np.zeros(len(rows), dtype=bool)
            keep[found] = pack.verify(rows[found])
            rows[~keep] = -1
        return rows

    def _score_fleet(
        self, runs: _Runs, rows: np.ndarray, chosen: np.ndarray, values: np.ndarray, out: _Answers
    ) -> None:
        run_of_row = np.repeat(np.arange(len(runs.starts)), runs.lengths)
        counts = np.bincount(run_of_row[chosen], minlength=len(runs.starts))
        scored_runs = np.flatnonzero(counts)
        scores, ambiguous = fleet_kernel.decision_values(
            self._packed, rows[scored_runs], counts[scored_runs], values[chosen]
        )
        labels = np.where(scores > 0, 1, -1)
        if ambiguous.any():  # the sign is the exact estimator's to decide (rare)
            owners = np.repeat(scored_runs, counts[scored_runs])
            for run in np.unique(owners[ambiguous]):
                mine = np.flatnonzero(ambiguous & (owners == run))
                model = self.model(str(runs.devices[run]), str(runs.sensors[run]))
                exact = model.pipeline
                X = values[chosen][mine].reshape(-1, 1)
                scores[mine], labels[mine] = (
                    exact.decide(X) if isinstance(exact, FastOneClassSVM) else self._decide(
                        model, X
                    )
                )  # fmt: skip
        out.score[chosen] = scores
        out.flag[chosen] = (labels == -1).astype(np.int64)
        out.scored[chosen] = True

    def _score_pair(
        self,
        device: object,
        sensor: object,
        group: pd.DataFrame,
        name: str | None,
        errors: str,
    ) -> pd.DataFrame:
        label = name or f"Device={device!r} Sensor={sensor!r}"
        if pd.isna(device) or pd.isna(sensor):
            self._unscored(label, len(group), len(group), "a missing Device or Sensor")
            return _unscored_rows(group, "missing_key")
        try:
            model = self.model(str(device), str(sensor))
        except ModelStoreError as exc:
            missing = isinstance(exc, ModelNotFoundError)
            if errors == "raise" or (errors == "no_model" and not missing):
                raise
            status = "no_model" if missing else "model_error"
            self._unscored(label, len(group), len(group), str(exc))
            return _unscored_rows(group, status)
        features = list(model.features)
        missing = [column for column in features if column not in group.columns]
        if missing:
            raise PartitionError(
                f"{label}: missing column(s) {', '.join(missing)} that the model {model.file} needs"
            )
        if all(group[column].dtype == np.float64 for column in features):
            X = np.column_stack([group[column].to_numpy() for column in features])
        else:
            X = group[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
        has_ts = group[TS].notna().to_numpy()
        usable = np.isfinite(X).all(axis=1) & has_ts
        scores = np.full(len(group), np.nan)
        labels = np.zeros(len(group), dtype=np.int64)
        if usable.all():
            scores, labels = self._decide(model, X)
            status: object = STATUS_OK
        else:
            unusable = int((~usable).sum())
            self._unscored(
                label,
                unusable,
                len(group),
                f"a missing TS or a missing or non-numeric {'/'.join(features)}",
            )
            if usable.any():
                scores[usable], labels[usable] = self._decide(model, X[usable])
            status = np.where(usable, STATUS_OK, np.where(has_ts, "invalid_value", "missing_ts"))
        flags = pd.array((labels == -1).astype("int64"), dtype="Int64")
        if not usable.all():
            flags[~usable] = pd.NA
        return pd.DataFrame(
            {
                TS: group[TS].to_numpy(),
                DEVICE: _same_strings(group[DEVICE], str(device)),
                SENSOR: _same_strings(group[SENSOR], str(sensor)),
                VALUE: pd.to_numeric(group[VALUE], errors="coerce").to_numpy(dtype="float64"),
                SCORE: scores,
                IS_ANOMALY: flags,
                MODEL_VERSION: model.version,
                STATUS: status,
            },
            copy=False,
        )

    def _unscored(self, label: str, count: int, total: int, why: str) -> None:
        log.warning("%s: %d of %d rows not scored: %s", label, count, total, why)


@dataclass
class _Runs:
    """Consecutive rows of one (Device, Sensor) in a frame (a shard is sorted by pair)."""

    starts: np.ndarray
    lengths: np.ndarray
    devices: np.ndarray
    sensors: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Runs:
        # Integer codes, not Python strings: a shard's key columns are Arrow text, and turning
        # 200,000 of them into objects to compare neighbours costs more than scoring them.
        device_codes, device_values = _codes(frame[DEVICE])
        sensor_codes, sensor_values = _codes(frame[SENSOR])
        change = np.ones(len(frame), dtype=bool)
        change[1:] = (device_codes[1:] != device_codes[:-1]) | (
            sensor_codes[1:] != sensor_codes[:-1]
        )
        starts = np.flatnonzero(change)
        lengths = np.diff(np.append(starts, len(frame)))
        return cls(
            starts,
            lengths,
            device_values[device_codes[starts]],
            sensor_values[sensor_codes[starts]],
        )

    def bounds(self, run: int) -> tuple[int, int]:
        start = int(self.starts[run])
        return start, start + int(self.lengths[run])


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code and, by code, its value (an object array whose last entry, code -1,
    is None: a missing key, which :meth:`SensorPredictor._score_pair` answers)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    values = np.empty(len(uniques) + 1, dtype=object)
    values[:-1] = np.asarray(uniques, dtype=object)
    return codes, values


class _Labels:
    """A text column of few distinct values (a status, a model version), kept as integer codes
    and handed out as a Categorical: building one from 200,000 Python strings costs more than
    scoring them. Code -1 is None."""

    def __init__(self, rows: int, initial: str | None) -> None:
        self.values: dict[str, int] = {}
        self.codes = np.full(rows, self._code(initial), dtype=np.int32)

    def _code(self, value: object) -> int:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return -1
        return self.values.setdefault(str(value), len(self.values))

    def put(self, where: slice | np.ndarray, value: str | None) -> None:
        self.codes[where] = self._code(value)

    def put_each(self, start: int, values: np.ndarray) -> None:
        """``values[i]`` into row ``start + i``."""
        self.codes[start : start + len(values)] = self._codes_of(values)

    def put_runs(self, runs: _Runs, which: np.ndarray, values: np.ndarray) -> None:
        """``values[i]`` into every row of run ``which[i]``."""
        chosen = np.zeros(len(runs.starts), dtype=bool)
        chosen[which] = True
        by_run = np.zeros(len(runs.starts), dtype=np.int32)
        by_run[which] = self._codes_of(values)
        rows = np.repeat(chosen, runs.lengths)
        self.codes[rows] = np.repeat(by_run, runs.lengths)[rows]

    def _codes_of(self, values: np.ndarray) -> np.ndarray:
        """Each value's code, one lookup per distinct value."""
        local, uniques = pd.factorize(values, use_na_sentinel=True)
        to_mine = np.array([*(self._code(value) for value in uniques), -1], dtype=np.int32)
        return to_mine[local]

    def categorical(self) -> pd.Categorical:
        return pd.Categorical.from_codes(self.codes, categories=list(self.values))


class _Answers:
    """The prediction columns of a many-pair frame, filled in place, in input order."""

    def __init__(self, rows: int, values: np.ndarray) -> None:
        self.values = values
        self.score = np.full(rows, np.nan)
        self.flag = np.zeros(rows, dtype=np.int64)
        self.scored = np.zeros(rows, dtype=bool)
        self.status = _Labels(rows, STATUS_OK)
        self.version = _Labels(rows, None)

    def set_runs(
        self, runs: _Runs, fleet_runs: np.ndarray, rows: np.ndarray, pack: PackedStore | None
    ) -> None:
        """The packed model's version into every row of each run in ``fleet_runs``."""
        if not len(fleet_runs):
            return
        self.version.put_runs(runs, fleet_runs, pack.strings("version", rows[fleet_runs]))

    def take(self, start: int, stop: int, answer: pd.DataFrame) -> None:
        """A pair's own answer (:meth:`SensorPredictor._score_pair`) into rows start:stop."""
        self.score[start:stop] = answer[SCORE].to_numpy(dtype="float64", na_value=np.nan)
        flags = answer[IS_ANOMALY]
        self.scored[start:stop] = flags.notna().to_numpy()
        self.flag[start:stop] = flags.fillna(0).to_numpy(dtype=np.int64)
        self.status.put_each(start, answer[STATUS].to_numpy(dtype=object))
        self.version.put_each(start, answer[MODEL_VERSION].to_numpy(dtype=object))

    def frame(self, source: pd.DataFrame) -> pd.DataFrame:
        flags = pd.array(self.flag, dtype="Int64")
        flags[~self.scored] = pd.NA
        return pd.DataFrame(
            {
                TS: source[TS].to_numpy(),
                DEVICE: source[DEVICE].array,
                SENSOR: source[SENSOR].array,
                VALUE: self.values,
                SCORE: self.score,
                IS_ANOMALY: flags,
                MODEL_VERSION: self.version.categorical(),
                STATUS: self.status.categorical(),
            },
            copy=False,
        )


def _unscored_rows(group: pd.DataFrame, status: str) -> pd.DataFrame:
    """The rows of ``group`` answered with ``status`` and no score."""
    return pd.DataFrame(
        {
            TS: group[TS].to_numpy(),
            DEVICE: group[DEVICE].to_numpy(dtype=object),
            SENSOR: group[SENSOR].to_numpy(dtype=object),
            VALUE: pd.to_numeric(group[VALUE], errors="coerce").to_numpy(dtype="float64"),
            SCORE: np.nan,
            IS_ANOMALY: pd.array([pd.NA] * len(group), dtype="Int64"),
            MODEL_VERSION: None,
            STATUS: status,
        }
    )
