"""The predictor: sklearn's own labels and scores, bad rows dropped, one load per model."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.svm import OneClassSVM

from scoring.data.schema import PREDICTION_COLUMNS
from scoring.models.predictor import PartitionError, SensorPredictor
from scoring.models.store import LoadedModel, ModelNotFoundError, ModelStore
from tests.fixtures.models import default_pipeline

MEANS = {("dev-1", "temp"): 20.0, ("dev-1", "hum"): 55.0, ("dev-2", "temp"): 30.0}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ModelStore:
    store = ModelStore(tmp_path_factory.mktemp("models"))
    rng = np.random.default_rng(7)
    for (device, sensor), mean in MEANS.items():
        X = rng.normal(mean, 2.0, size=(300, 1))
        pipeline = default_pipeline(nu=0.02)
        store.save(
            device, sensor, pipeline.fit(X), training_rows=300, params={}, write_manifest=False
        )
    store.write_manifest()
    return store


def partition(device: str, sensor: str, values) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "TS": pd.date_range("2026-02-01", periods=len(values), freq="5min"),
            "Device": device,
            "Sensor": sensor,
            "Value": values,
        }
    )


def test_scores_and_labels_are_sklearns_own(store: ModelStore) -> None:
    predictor = SensorPredictor(store.root)
    rng = np.random.default_rng(1)
    for (device, sensor), mean in MEANS.items():
        values = np.concatenate([rng.normal(mean, 4.0, 2000), [mean - 50, mean + 50]])
        out = predictor.score(partition(device, sensor, values))
        pipeline = store.load(device, sensor).pipeline
        X = values.reshape(-1, 1)
        assert list(out.columns) == list(PREDICTION_COLUMNS)
        np.testing.assert_array_equal(out["Score"], pipeline.decision_function(X))
        np.testing.assert_array_equal(out["IsAnomaly"], (pipeline.predict(X) == -1).astype(int))
        assert 0 < out["IsAnomaly"].sum() < len(values), "need both labels to compare"
        assert (out["ModelVersion"] == store.entry(device, sensor)["version"]).all()
        assert (out["Device"] == device).all() and (out["Sensor"] == sensor).all()


def test_label_of_a_zero_decision_value_follows_libsvm() -> None:
    """A decision value of exactly 0 is an anomaly for libsvm: the seam must agree."""

    class AtBoundary(OneClassSVM):
        def decision_function(self, X):
            return np.array([0.0, 1e-300, -1e-300])

    model = LoadedModel("d", "s", "v1", pipeline=AtBoundary())
    _, labels = SensorPredictor(ModelStore("unused"))._decide(model, np.zeros((3, 1)))
    np.testing.assert_array_equal(labels, [-1, 1, -1])


def test_other_estimators_use_their_own_predict() -> None:
    X = np.random.default_rng(2).normal(0, 1, size=(200, 1))
    forest = IsolationForest(random_state=0).fit(X)
    model = LoadedModel("d", "s", "v1", pipeline=forest)
    probe = np.linspace(-6, 6, 61).reshape(-1, 1)
    scores, labels = SensorPredictor(ModelStore("unused"))._decide(model, probe)
    np.testing.assert_array_equal(labels, forest.predict(probe))
    np.testing.assert_array_equal(scores, forest.decision_function(probe))


def test_unscorable_values_are_answered_with_a_status_and_a_warning(
    store: ModelStore, caplog
) -> None:
    frame = partition("dev-1", "temp", [20.0, "broken", None, 21.0, np.inf, "19.5"])
    frame.loc[5, "TS"] = None
    with caplog.at_level(logging.WARNING, logger="scoring.models.predictor"):
        out = SensorPredictor(store).score(frame, name="mini-batch 4")
    assert len(out) == len(frame), "every input row is answered"
    assert out["Status"].tolist() == [
        "ok", "invalid_value", "invalid_value", "ok", "invalid_value", "missing_ts"
    ]  # fmt: skip
    ok = out["Status"] == "ok"
    assert out.loc[ok, "Value"].tolist() == [20.0, 21.0]
    assert out.loc[ok, "Score"].notna().all() and out.loc[~ok, "Score"].isna().all()
    assert out.loc[~ok, "IsAnomaly"].isna().all()
    assert out["TS"].iloc[:5].tolist() == frame["TS"].iloc[:5].tolist(), "rows keep their keys"
    assert "mini-batch 4: 4 of 6 rows not scored" in caplog.text


def test_a_pair_without_a_model_raises_or_is_answered_by_status(store: ModelStore) -> None:
    frame = pd.concat([partition("dev-1", "temp", [20.0, 21.0]), partition("nobody", "x", [1.0])])
    with pytest.raises(ModelNotFoundError, match="nobody"):
        SensorPredictor(store).score(frame)
    out = SensorPredictor(store, on_model_error="status").score(frame)
    assert out.set_index("Device")["Status"].to_dict() == {"dev-1": "ok", "nobody": "no_model"}


def test_several_pairs_and_loose_column_names(store: ModelStore) -> None:
    frame = pd.concat([partition("dev-1", "temp", [20.0] * 3), partition("dev-2", "temp", [30.0])])
    frame = frame.rename(columns=str.lower).assign(Quality="good")
    out = SensorPredictor(store).score(frame)
    assert sorted(zip(out["Device"], out["Sensor"], strict=True)) == [
        ("dev-1", "temp"),
        ("dev-1", "temp"),
        ("dev-1", "temp"),
        ("dev-2", "temp"),
    ]
    assert list(out.columns) == list(PREDICTION_COLUMNS)


def test_each_model_is_loaded_once(store: ModelStore, monkeypatch) -> None:
    opened = ModelStore(store.root)
    calls = []
    real_load = opened.load
    monkeypatch.setattr(opened, "load", lambda d, s: calls.append((d, s)) or real_load(d, s))
    predictor = SensorPredictor(opened)
    for _ in range(3):
        predictor.score(partition("dev-1", "temp", [20.0, 21.0]))
    assert calls == [("dev-1", "temp")]
    assert predictor.stats.partitions == 3 and predictor.stats.rows_scored == 6


def test_missing_model_is_named(store: ModelStore) -> None:
    with pytest.raises(ModelNotFoundError, match=r"Device='dev-9' Sensor='temp'"):
        SensorPredictor(store).score(partition("dev-9", "temp", [1.0]))


def test_missing_column_is_named(store: ModelStore) -> None:
    with pytest.raises(PartitionError, match=r"mini-batch 0: missing column\(s\) Value"):
        SensorPredictor(store).score(
            partition("dev-1", "temp", [1.0]).drop(columns="Value"), name="mini-batch 0"
        )


def test_empty_partition_gives_an_empty_frame_with_the_columns(tmp_path: Path) -> None:
    out = SensorPredictor(ModelStore(tmp_path)).score(partition("dev-1", "temp", []))
    assert out.empty and list(out.columns) == list(PREDICTION_COLUMNS)
