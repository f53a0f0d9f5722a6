"""Many pairs in one frame (a shard): the vectorised fleet kernel gives scikit-learn's labels and
the per-pair path's answers, row for row, including the rows no model can score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.models.pack import PackedStore, write_pack
from scoring.models.predictor import SensorPredictor
from scoring.models.store import ModelStore
from tests.fixtures.models import default_pipeline

PAIRS = [(f"dev-{d:02d}", s) for d in range(12) for s in ("temp", "vib")]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ModelStore:
    rng = np.random.default_rng(7)
    store = ModelStore(tmp_path_factory.mktemp("models"))
    for device, sensor in PAIRS:
        X = rng.normal(rng.uniform(-40, 40), rng.uniform(0.5, 4), size=(200, 1))
        model = default_pipeline(nu=float(rng.uniform(0.02, 0.2)))
        store.save(device, sensor, model.fit(X), training_rows=200, params={},
                   write_manifest=False)  # fmt: skip
    store.write_manifest()
    write_pack(store)
    return store


def _boundary_point(model) -> float:
    """A value bisected onto the model's decision boundary (its sign is the guard band's)."""
    mean = model.steps[0][1].mean_[0]
    a, b = mean, mean + 1e3
    for _ in range(200):
        m = (a + b) / 2
        if m in (a, b):
            break
        a, b = (m, b) if model.decision_function([[m]])[0] > 0 else (a, m)
    return a


def _shard(store: ModelStore) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    frames = []
    for device, sensor in [*PAIRS, ("dev-99", "temp")]:  # the last has no model
        values = rng.normal(0, 30, 12)
        if (device, sensor) in store:
            scaler = store.load(device, sensor).pipeline.steps[0][1]
            values = scaler.mean_[0] + scaler.scale_[0] * rng.normal(0, 2.5, 12)
            values[3] = _boundary_point(store.load(device, sensor).pipeline)
        frames.append(
            pd.DataFrame(
                {
                    "TS": pd.date_range("2024-01-01", periods=12, freq="5min"),
                    "Device": device,
                    "Sensor": sensor,
                    "Value": values,
                }
            )
        )
    shard = pd.concat(frames, ignore_index=True)
    shard.loc[5, "Value"] = np.nan
    shard.loc[30, "Value"] = np.inf
    shard.loc[40, "TS"] = pd.NaT
    return shard


def test_the_fleet_kernel_matches_the_pair_path_and_scikit_learn(store):
    shard = _shard(store)
    fleet = SensorPredictor(store, on_model_error="status").score(shard, name="shard 0")
    assert len(fleet) == len(shard)
    pairwise = pd.concat(
        [
            SensorPredictor(store, on_model_error="status").score(group.reset_index(drop=True))
            for _, group in shard.groupby(["Device", "Sensor"], sort=False)
        ],
        ignore_index=True,
    )
    assert fleet["Status"].astype(str).tolist() == pairwise["Status"].astype(str).tolist()
    assert fleet["IsAnomaly"].equals(pairwise["IsAnomaly"])
    both = fleet["Score"].notna()
    assert (both == pairwise["Score"].notna()).all()
    assert np.abs(fleet["Score"][both] - pairwise["Score"][both]).max() <= 1e-9
    assert fleet["ModelVersion"].astype(object).equals(pairwise["ModelVersion"].astype(object))
    assert set(fleet.loc[fleet["Device"] == "dev-99", "Status"]) == {"no_model"}
    assert fleet.loc[[5, 30], "Status"].tolist() == ["invalid_value"] * 2
    assert fleet.loc[40, "Status"] == "missing_ts"
    for device, sensor in PAIRS:
        rows = (shard["Device"] == device) & (shard["Sensor"] == sensor) & (fleet["Status"] == "ok")
        model = store.load(device, sensor).pipeline
        X = shard.loc[rows, ["Value"]].to_numpy()
        expected = (model.predict(X) == -1).astype(int)
        assert fleet.loc[rows, "IsAnomaly"].tolist() == expected.tolist(), (device, sensor)


def test_a_damaged_row_of_the_pack_falls_back_to_the_verified_file(store, tmp_path, caplog):
    import shutil

    copy = ModelStore(tmp_path / "copy")
    shutil.copytree(store.root, copy.root)
    original = PackedStore.for_store(store)
    needle = original.slice("dual_coef", original.row(*PAIRS[3])).tobytes()
    data = bytearray((copy.root / "models.pack.arrow").read_bytes())
    at = data.find(needle)
    assert at > 0
    data[at + 3] ^= 0x40  # one flipped bit in one dual coefficient of one model
    (copy.root / "models.pack.arrow").write_bytes(bytes(data))
    shard = _shard(store)
    damaged = SensorPredictor(copy, on_model_error="status").score(shard)
    clean = SensorPredictor(store, on_model_error="status").score(shard)
    assert damaged["IsAnomaly"].equals(clean["IsAnomaly"]), "labels unchanged: the file served"
    assert "is damaged (its checksum differs)" in caplog.text


def test_rows_without_a_key_are_answered_missing_key_and_the_rest_scored(store):
    shard = _shard(store)
    shard["Device"] = shard["Device"].astype("str")  # Arrow-backed text, as a shard reads
    keyless = [0, 1, 100, 200, 201]
    shard.loc[keyless, "Device"] = None
    answered = SensorPredictor(store, on_model_error="status").score(shard, name="shard 0")
    assert len(answered) == len(shard)
    assert answered.loc[keyless, "Status"].tolist() == ["missing_key"] * len(keyless)
    assert answered.loc[keyless, "Score"].isna().all()
    others = answered.drop(index=keyless)
    reference = SensorPredictor(store, on_model_error="status").score(_shard(store), name="shard 0")
    assert others["Status"].astype(str).equals(reference.drop(index=keyless)["Status"].astype(str))
    assert set(answered["Status"].cat.categories) == set(answered["Status"].astype(str))
