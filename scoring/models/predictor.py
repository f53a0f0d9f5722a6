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
its models are served from it, without reading their skops files, and scored by the
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
from scoring.models.kernel import FastOneClassSVM, compile_model
from scoring.models.pack import PackedStore
from scoring.models.store import LoadedModel, ModelNotFoundError, ModelStore, ModelStoreError

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
        if on_model_error not in ("raise", "status"):
            raise ValueError(f"on_model_error must be 'raise' or 'status', not {on_model_error!r}")
        #: "raise": a pair without a usable model fails its mini-batch (one pair per mini-batch);
        #: "status": its rows come back as no_model / model_error (many pairs per mini-batch)
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

    def score(self, partition: pd.DataFrame, *, name: str | None = None) -> pd.DataFrame:
        """One prediction row per row of ``partition`` (any number of pairs), in its order.

        Rows that cannot be scored come back with a ``Status`` saying why (and no Score);
        a pair without a usable model raises (:class:`ModelNotFoundError`, ...) unless
        ``on_model_error`` is ``"status"``. ``name`` labels the partition in log messages.
        """
        label = name or "partition"
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
            outputs = [self._score_pair(device, sensor, frame, name)]
        else:
            devices, sensors = frame[DEVICE].to_numpy(), frame[SENSOR].to_numpy()
            if (devices == devices[0]).all() and (sensors == sensors[0]).all():
                # The usual case (one partition = one pair): no groupby overhead.
                outputs = [self._score_pair(devices[0], sensors[0], frame, name)]
            else:
                groups = frame.groupby([DEVICE, SENSOR], sort=False, dropna=False)
                outputs = [self._score_pair(d, s, group, name) for (d, s), group in groups]
        result = outputs[0] if len(outputs) == 1 else pd.concat(outputs, ignore_index=True)
        ok = (result[STATUS] == STATUS_OK).to_numpy()
        self.stats.rows_scored += int(ok.sum())
        self.stats.rows_unscored += len(result) - int(ok.sum())
        self.stats.anomalies += int(result[IS_ANOMALY].sum())
        return result

    def _score_pair(
        self, device: object, sensor: object, group: pd.DataFrame, name: str | None
    ) -> pd.DataFrame:
        label = name or f"Device={device!r} Sensor={sensor!r}"
        if pd.isna(device) or pd.isna(sensor):
            self._unscored(label, len(group), len(group), "a missing Device or Sensor")
            return _unscored_rows(group, "missing_key")
        try:
            model = self.model(str(device), str(sensor))
        except ModelStoreError as exc:
            if self.on_model_error == "raise":
                raise
            status = "no_model" if isinstance(exc, ModelNotFoundError) else "model_error"
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
