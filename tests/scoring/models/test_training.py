"""Training: one Pipeline(StandardScaler, OneClassSVM) per pair, into a model store."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from batchscore.cli import main
from scoring.models import training as train
from scoring.models.baseline import Baseline, baseline_of
from scoring.models.pack import PACK_NAME, store_baselines, verify_pack, write_pack
from scoring.models.store import ModelStore, ModelStoreError, manifest_text
from tests.fixtures.models import fitted_pipeline


def readings(pairs: dict[tuple[str, str], int], seed: int = 0) -> pd.DataFrame:
    """Synthetic aggregated readings: ``rows`` per pair around a pair-specific mean."""
    rng = np.random.default_rng(seed)
    frames = []
    for number, ((device, sensor), rows) in enumerate(pairs.items()):
        frames.append(
            pd.DataFrame(
                {
                    "TS": pd.date_range("2026-01-01", periods=rows, freq="min"),
                    "Device": device,
                    "Sensor": sensor,
                    "Value": rng.normal(10.0 * (number + 1), 1.0, size=rows),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


SMALL = {("dev-1", "temp"): 80, ("dev-1", "hum"): 60, ("dev-2", "temp"): 70}


def test_one_model_per_pair_with_the_default_hyperparameters(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    report = train.train_models(readings(SMALL), store)
    assert sorted((d, s) for d, s, _, _ in report.trained) == sorted(SMALL)
    assert ModelStore(tmp_path).keys() == sorted(SMALL)
    for (device, sensor), rows in SMALL.items():
        loaded = ModelStore(tmp_path).load(device, sensor)
        scaler, svm = (step for _, step in loaded.pipeline.steps)
        assert isinstance(scaler, StandardScaler) and isinstance(svm, OneClassSVM)
        assert (svm.kernel, svm.gamma, svm.nu) == ("rbf", 0.1, 0.02)
        entry = store.entry(device, sensor)
        assert entry["training_rows"] == rows
        assert entry["params"] == {
            "kernel": "rbf",
            "gamma": 0.1,
            "nu": 0.02,
            "outlier_mads": 3.0,
            "range_tolerance": 0.3,
        }
        assert entry["features"] == list(train.FEATURES)
        # Fitted on this pair's own data (past anomalies left out): its scaler learnt its mean.
        own = readings(SMALL).query("Device == @device and Sensor == @sensor")[["Value"]]
        _, kept = train.fit_model(own.to_numpy(), train.TrainParams())
        assert scaler.mean_[0] == pytest.approx(kept.mean())
        # ... and its baseline: the deciles of the values it was trained on
        assert entry["baseline"] == baseline_of(own.to_numpy()).to_dict()


def test_training_builds_a_current_pack_so_scoring_takes_the_fast_path(
    tmp_path: Path, monkeypatch
) -> None:
    from scoring.models.pack import PackedStore

    def no_reading_back(self, device, sensor):
        raise AssertionError(f"train read {device}/{sensor} back from its file to pack it")

    store = ModelStore(tmp_path)
    monkeypatch.setattr(ModelStore, "load", no_reading_back)
    train.train_models(readings(SMALL), store)
    monkeypatch.undo()
    pack = PackedStore.for_store(ModelStore(tmp_path))
    assert pack is not None, "train must leave a pack built from the manifest it wrote"
    assert sorted(pack.keys()) == sorted(SMALL)
    for device, sensor in SMALL:  # the packed model is the saved file's model
        X = np.linspace(-50, 150, 401).reshape(-1, 1)
        packed = pack.fast_model(device, sensor).decision_function(X)
        saved = store.load(device, sensor).pipeline.decision_function(X)
        assert np.abs(packed - saved).max() <= 1e-9


def test_default_model_flags_few_normal_readings_and_all_far_ones() -> None:
    """The reason the default gamma is 0.1, not "scale" (see the train module's doc)."""
    rng = np.random.default_rng(11)
    training, fresh = rng.normal(50.0, 4.0, size=(1000, 1)), rng.normal(50.0, 4.0, (20000, 1))
    model = train.build_pipeline(train.TrainParams()).fit(training)
    false_alarms = np.mean(model.predict(fresh) == -1)
    assert false_alarms < 0.10, f"default model flags {false_alarms:.1%} of normal readings"
    far = np.array([[50.0 - 16], [50.0 + 16], [50.0 + 40]])  # 4 and 10 standard deviations
    assert (model.predict(far) == -1).all()
    assert model[-1].support_vectors_.shape[0] < 0.05 * len(training)


def test_small_pairs_are_skipped_and_bad_rows_dropped_with_warnings(tmp_path: Path, caplog):
    frame = readings({**SMALL, ("dev-3", "pressure"): 5})
    frame.columns = [name.lower() for name in frame.columns]  # names match case-insensitively
    frame["value"] = frame["value"].astype(object)
    frame.loc[[0, 1, 2], "value"] = ["n/a", None, "12,5"]
    frame["Extra"] = "kept and ignored"
    with caplog.at_level(logging.WARNING, logger="scoring.models.training"):
        report = train.train_models(frame, ModelStore(tmp_path), source="fleet.csv")
    assert len(report.trained) == 3
    assert [(d, s) for d, s, _ in report.skipped] == [("dev-3", "pressure")]
    assert report.dropped_rows == 3
    assert ModelStore(tmp_path).entry("dev-1", "temp")["training_rows"] == 77
    text = caplog.text
    assert "skipped Device='dev-3' Sensor='pressure': 5 usable rows" in text
    assert "fleet.csv: dropped 3 of" in text


@pytest.mark.parametrize("rows", [1, 2, 3, 10, 287, 288])
def test_column_medians_are_numpys_to_the_bit(rows: int) -> None:
    rng = np.random.default_rng(rows)
    for X in (
        rng.normal(size=(rows, 1)) * 1e3,
        rng.lognormal(size=(rows, 3)),
        np.round(rng.normal(size=(rows, 2)), 1),  # ties
        np.full((rows, 1), 0.1),
    ):
        mine, numpys = train.column_medians(X), np.median(X, axis=0)
        assert mine.shape == numpys.shape and mine.tobytes() == numpys.tobytes()


def _pairs_as_normalized_and_grouped(frame: pd.DataFrame, min_rows: int) -> list[tuple]:
    """The specification prepare_pairs meets without copying the frame: the whole frame
    normalized (schema.normalize_readings), unusable rows dropped, then grouped by pair."""
    from scoring.data.schema import normalize_readings

    norm = normalize_readings(frame, "spec", required=("Device", "Sensor", "Value"))
    norm = norm[norm["Device"].notna() & norm["Sensor"].notna() & np.isfinite(norm["Value"])]
    out = []
    for (device, sensor), group in norm.groupby(["Device", "Sensor"], sort=True):
        if len(group) >= min_rows:
            times = group["TS"].to_numpy()
            times = None if np.isnat(times).any() else times
            out.append((device, sensor, group[["Value"]].to_numpy(), times))
    return out


@pytest.mark.parametrize("wide_codes", [False, True])  # as when devices x sensors > 2**31
@pytest.mark.parametrize("categories", [False, True])  # keys as a Parquet file's dictionary
@pytest.mark.parametrize("shuffled", [False, True])
def test_pairs_are_prepared_as_the_normalized_frame_grouped_by_pair(
    shuffled: bool, categories: bool, wide_codes: bool, monkeypatch
) -> None:
    if wide_codes:
        monkeypatch.setattr(train, "_MAX_INT32_PAIRS", 1)
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "ts": pd.Series(pd.date_range("2026-01-01", periods=n, freq="5min")).astype(object),
            "DEVICE": rng.choice(np.array([" d1", "d1", "d2 ", 7, "", None], dtype=object), n),
            "sensor": rng.choice(np.array(["t", "p", " t", np.nan], dtype=object), n),
            "Value": rng.normal(size=n).astype(object),
        }
    )
    frame.loc[[3, 9, 40], "Value"] = ["n/a", None, np.inf]
    frame.loc[[5, 77], "ts"] = ["not a time", None]  # those pairs get no daily profile
    if shuffled:
        frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    expected = _pairs_as_normalized_and_grouped(frame, min_rows=30)
    given = frame.astype({"DEVICE": "category", "sensor": "category"}) if categories else frame
    pairs, report = train.prepare_pairs(given, source="spec", min_rows=30)
    assert len(expected) >= 4 and report.skipped
    assert [(p.device, p.sensor) for p in pairs] == [(d, s) for d, s, _, _ in expected]
    for pair, (_, _, values, times) in zip(pairs, expected, strict=True):
        np.testing.assert_array_equal(pair.X, values)
        assert (pair.times is None) == (times is None)
        if times is not None:
            np.testing.assert_array_equal(pair.times, times)
    usable = frame["DEVICE"].map(lambda v: str(v).strip() not in ("", "None", "nan"))
    assert report.dropped_rows == len(frame) - sum(len(p.X) for p in pairs) - sum(
        int(reason.split()[0]) for _, _, reason in report.skipped
    )
    assert report.dropped_rows >= (~usable).sum() + 3


def test_a_failing_pair_does_not_sink_the_others(tmp_path: Path, monkeypatch, caplog) -> None:
    real_build = train.build_pipeline

    class Exploding:
        def fit(self, X):
            if X.mean() > 25:  # only dev-2/temp has its mean near 30
                raise ValueError("solver diverged")
            return real_build(train.TrainParams()).fit(X)

    monkeypatch.setattr(train, "build_pipeline", lambda params: Exploding())
    report = train.train_models(readings(SMALL), ModelStore(tmp_path))
    assert [(d, s) for d, s, _ in report.failed] == [("dev-2", "temp")]
    assert "solver diverged" in report.failed[0][2]
    assert len(report.trained) == 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_model_file_that_cannot_be_written_stops_training_naming_it(tmp_path, jobs) -> None:
    """The workers write the model files: one that cannot be written (here a plain file where
    its device's folder goes; permissions would not stop root) stops the run with the pair and
    the path named, and no manifest names a file that is not there."""
    pairs = {(f"dev-{i:02d}", "temp"): 40 for i in range(train._POOL_MIN_PAIRS + 4)}
    (tmp_path / "dev-07").write_text("in the way")
    with pytest.raises(ModelStoreError) as caught:
        train.train_models(readings(pairs), ModelStore(tmp_path), jobs=jobs)
    message = str(caught.value)
    assert "Device='dev-07' Sensor='temp'" in message and "cannot write" in message
    assert str(tmp_path / "dev-07") in message
    assert not (tmp_path / "manifest.json").exists()


@pytest.mark.parametrize(("total", "jobs"), [(1, 2), (20, 2), (5_000, 2), (100_000, 2), (999, 7)])
def test_pool_tasks_cover_every_pair_once_in_order_and_shrink_toward_the_end(total, jobs):
    spans = train._ranges(total, jobs)
    assert [start for start, _ in spans] == [0, *[stop for _, stop in spans[:-1]]]
    assert spans[-1][1] == total
    sizes = [stop - start for start, stop in spans]
    assert max(sizes) <= train._CHUNK_MAX_PAIRS
    assert all(size >= train._CHUNK_MIN_PAIRS for size in sizes[:-1])
    assert sizes == sorted(sizes, reverse=True) or sizes[-1] < train._CHUNK_MIN_PAIRS
    if total >= 5_000:  # the last tasks are small: the processes finish together
        assert sizes[-1] <= train._CHUNK_MIN_PAIRS < sizes[0] // 10


def test_compiled_models_lost_from_the_temporary_folder_stop_training_unrecorded(
    tmp_path, monkeypatch
) -> None:
    def gone(rows, parked):
        raise FileNotFoundError(2, "No such file or directory", parked.path)

    monkeypatch.setattr(train, "unpark_arrays", gone)
    pairs = {(f"dev-{i:02d}", "temp"): 40 for i in range(train._POOL_MIN_PAIRS + 4)}
    with pytest.raises(ModelStoreError, match=r"cannot read back .*\.f8.*run the training again"):
        train.train_models(readings(pairs), ModelStore(tmp_path), jobs=2)
    assert not (tmp_path / "manifest.json").exists()


def test_workers_run_with_the_parents_objects_frozen_and_the_parent_unfreezes_them(
    tmp_path, monkeypatch
) -> None:
    """Forked workers must not garbage-collect the objects they share with the parent (each
    page a collection writes to is copied): the objects are frozen before the fork, and
    collected again in the parent once the workers are done."""
    import gc

    seen = tmp_path / "freeze-counts"
    fit_chunk = train._fit_chunk

    def recording(chunk, *args, **kwargs):
        with open(seen, "a", encoding="utf-8") as out:  # from each worker's task
            out.write(f"{os.getpid()} {gc.get_freeze_count()}\n")
        return fit_chunk(chunk, *args, **kwargs)

    monkeypatch.setattr(train, "_fit_chunk", recording)
    pairs = {(f"dev-{i:02d}", "temp"): 40 for i in range(train._POOL_MIN_PAIRS)}
    train.train_models(readings(pairs), ModelStore(tmp_path / "store"), jobs=2)
    counts = [line.split() for line in seen.read_text().splitlines()]
    assert counts and all(int(pid) != os.getpid() for pid, _ in counts)  # run in workers
    assert all(int(count) > 1000 for _, count in counts)
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_itself_keeps_them_frozen() -> None:
    import gc

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with train._frozen_objects():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    with train._frozen_objects():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_process_pool_gives_the_same_models_as_one_process(tmp_path: Path) -> None:
    pairs = {(f"dev-{i:02d}", "temp"): 40 for i in range(train._POOL_MIN_PAIRS)}
    frame = readings(pairs)
    serial, pooled = ModelStore(tmp_path / "serial"), ModelStore(tmp_path / "pooled")
    train.train_models(frame, serial, jobs=1)
    report = train.train_models(frame, pooled, jobs=2)
    assert len(report.trained) == len(pairs)
    probe = np.linspace(0, 200, 41).reshape(-1, 1)
    for key in pairs:
        a, b = serial.load(*key).pipeline, pooled.load(*key).pipeline
        np.testing.assert_array_equal(a.decision_function(probe), b.decision_function(probe))


def test_a_pack_built_from_models_compiled_in_workers_is_the_one_the_files_give(tmp_path):
    """Workers serialize and compile; the pack the parent writes from their arrays must equal
    the pack ``models pack`` rebuilds from the files, and pass ``models verify``."""
    pairs = {(f"dev-{i:02d}", "temp"): 40 for i in range(train._POOL_MIN_PAIRS)}
    store = ModelStore(tmp_path / "pooled")
    train.train_models(readings(pairs), store, jobs=2)
    checked, problems = verify_pack(store)
    assert (checked, problems) == (len(pairs), [])
    from_workers = (store.root / PACK_NAME).read_bytes()
    (store.root / PACK_NAME).unlink()
    write_pack(store)  # from the files, as `batchscore models pack` does
    assert (store.root / PACK_NAME).read_bytes() == from_workers
    # ... and the manifest lines the workers made are the entries' own JSON
    written = (store.root / "manifest.json").read_text(encoding="utf-8")
    entries = {key: store.entry(*key) for key in store.keys()}
    rebuilt = manifest_text(entries)
    assert written.split('"models"')[1] == rebuilt.split('"models"')[1]


def test_hyperparameters_are_validated() -> None:
    with pytest.raises(ValueError, match="--nu"):
        train.TrainParams(nu=0.0).validate()
    with pytest.raises(ValueError, match="--gamma"):
        train.TrainParams(gamma=-1.0).validate()
    with pytest.raises(ValueError, match="--kernel"):
        train.TrainParams(kernel="cubic").validate()


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match=r"fleet\.csv: missing column\(s\) Value"):
        train.train_models(
            readings(SMALL).drop(columns="Value"), ModelStore("unused"), source="fleet.csv"
        )


# -------------------------------------------------------------------------- command line


def test_cli_trains_from_a_csv_file(tmp_path: Path) -> None:
    csv = tmp_path / "readings.csv"
    readings(SMALL).to_csv(csv, index=False)
    models = tmp_path / "models"
    code = main(
        ["train", "--input", str(csv), "--models", str(models), "--nu", "0.1", "--gamma", "0.5"]
        + ["--jobs", "1", "--no-progress"]
    )
    assert code == 0
    assert ModelStore(models).entry("dev-1", "temp")["params"] == {
        "kernel": "rbf",
        "gamma": 0.5,
        "nu": 0.1,
    }


def test_cli_trains_from_the_sensor_readings_table(tmp_path: Path) -> None:
    database = tmp_path / "sensors.db"
    frame = readings(SMALL).assign(MinValue=0.0, MaxValue=1.0, Count=6)
    with sqlite3.connect(database) as connection:
        frame.to_sql("SensorReadings", connection, index=False)
    models = tmp_path / "models"
    code = main(["train", "--db", f"sqlite:///{database}", "--models", str(models), "--jobs", "1"])
    assert code == 0
    assert ModelStore(models).keys() == sorted(SMALL)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--input", "missing.csv"], "--input missing.csv: no such file"),
        (["--input", "readings.txt"], "unsupported file extension"),
        (["--db", "sqlite:///nowhere/x.db"], "--db sqlite:///nowhere/x.db"),
        (["--input", "readings.csv", "--nu", "1.5"], "--nu 1.5: must be in (0, 1]"),
        (["--input", "readings.csv", "--min-rows", "0"], "--min-rows 0"),
        (["--input", "readings.csv", "--outlier-mads", "0"], "--outlier-mads 0.0: must be"),
        (["--input", "readings.csv", "--range-tolerance", "-1"], "--range-tolerance -1.0"),
    ],
)
def test_cli_bad_usage_is_one_line(tmp_path: Path, monkeypatch, capsys, extra, expected) -> None:
    monkeypatch.chdir(tmp_path)
    readings(SMALL).to_csv("readings.csv", index=False)
    Path("readings.txt").write_text("x")
    code = main(["train", *extra, "--models", "models"])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "Traceback" not in err


def test_cli_fails_when_nothing_could_be_trained(tmp_path: Path) -> None:
    csv = tmp_path / "tiny.csv"
    readings({("d", "s"): 3}).to_csv(csv, index=False)
    assert main(["train", "--input", str(csv), "--models", str(tmp_path / "m")]) == 1


def test_help_documents_the_defaults(capsys) -> None:
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0.02" in text and "rbf" in text and "scale" in text
    assert "support-vector" in text


# ------------------------------------------------------------ defaults and the reference model


def _with_past_anomalies(seed: int = 3) -> np.ndarray:
    """A day of a cycling sensor with a stuck run and two spikes among its windows."""
    rng = np.random.default_rng(seed)
    hours = np.arange(288) / 12
    values = 20 + 2 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.2, 288)
    values[100:104] = 35.0
    values[[40, 200]] += (12.0, -11.0)
    return values.reshape(-1, 1)


def test_explicit_nu_and_gamma_alone_train_scikit_learns_own_model(tmp_path: Path) -> None:
    """The reference model stays exact: nothing trimmed, nothing calibrated."""
    X = _with_past_anomalies()
    ts = pd.date_range("2024-01-01", periods=len(X), freq="5min")
    frame = pd.DataFrame({"TS": ts, "Device": "d", "Sensor": "s", "Value": X[:, 0]})
    frame.to_csv(tmp_path / "r.csv", index=False)
    argv = ["train", "--input", str(tmp_path / "r.csv"), "--models", str(tmp_path / "m")]
    assert main([*argv, "--nu", "0.05", "--gamma", "0.3", "--jobs", "1", "--no-progress"]) == 0
    ours = ModelStore(tmp_path / "m").load("d", "s").pipeline
    theirs = fitted_pipeline(X, nu=0.05, gamma=0.3)
    grid = np.linspace(0, 50, 2001).reshape(-1, 1)
    assert np.array_equal(ours.predict(grid), theirs.predict(grid))
    assert np.array_equal(ours.predict(X), theirs.predict(X))
    assert ours[-1].intercept_ == pytest.approx(theirs[-1].intercept_, abs=0)
    assert ModelStore(tmp_path / "m").entry("d", "s")["params"] == {
        "kernel": "rbf", "gamma": 0.3, "nu": 0.05
    }  # fmt: skip


def test_the_defaults_leave_past_anomalies_out_and_calibrate_the_range() -> None:
    X = _with_past_anomalies()
    model, kept = train.fit_model(X, train.TrainParams())
    assert len(kept) == len(X) - 6, "the stuck run and both spikes are left out"
    low, high = kept.min(), kept.max()
    inside = np.linspace(low - 0.29 * (high - low), high + 0.29 * (high - low), 500)
    assert (model.predict(inside.reshape(-1, 1)) == 1).all(), "the widened range is normal"
    assert (
        model.predict([[35.0], [low - 0.6 * (high - low)], [high + 0.6 * (high - low)]]) == -1
    ).all()
    reference = fitted_pipeline(kept, nu=0.02, gamma=0.1)
    # only the threshold moved: the same support vectors, a lower intercept
    assert np.array_equal(model[-1].support_vectors_, reference[-1].support_vectors_)
    assert model[-1].intercept_[0] > reference[-1].intercept_[0]
    shift = model[-1].intercept_[0] - reference[-1].intercept_[0]
    assert np.allclose(model.decision_function(X), reference.decision_function(X) + shift)
    assert np.allclose(model.score_samples(X), reference.score_samples(X))


def test_a_second_operating_state_is_not_trimmed_as_anomalies() -> None:
    """Far from the median alone would cut a machine's running state: it is dense, kept."""
    rng = np.random.default_rng(8)
    idle, running = rng.normal(10, 0.2, 330), rng.normal(14, 0.2, 100)
    X = np.concatenate([idle, running]).reshape(-1, 1)
    model, kept = train.fit_model(X, train.TrainParams())
    assert (kept > 12).sum() >= 70, "the running state stays in the fit (its edges may not)"
    both_states = np.r_[np.linspace(9.5, 10.5, 50), np.linspace(13.5, 14.5, 50)]
    assert (model.predict(both_states.reshape(-1, 1)) == 1).all()


def test_the_defaults_hold_on_a_fleet_made_by_other_means() -> None:
    """precision >= 0.5 at recall >= 0.85 on the fixture fleet (not ``batchscore simulate``),
    and far above the reference model's there."""
    from tests.fixtures.other_fleet import other_fleet

    def confusion(params: train.TrainParams, seed: int) -> np.ndarray:
        fleet, counts = other_fleet(seed=seed), np.zeros(3)
        scored = fleet.score.groupby(["Device", "Sensor"])
        for key, group in fleet.train.groupby(["Device", "Sensor"]):
            model, _ = train.fit_model(group[["Value"]].to_numpy(), params)
            window = scored.get_group(key)
            flagged = model.predict(window[["Value"]].to_numpy()) == -1
            actual = window["TrueAnomaly"].to_numpy() == 1
            counts += [
                (flagged & actual).sum(),
                (flagged & ~actual).sum(),
                (~flagged & actual).sum(),
            ]
        return counts

    defaults = sum(confusion(train.TrainParams(), seed) for seed in (0, 1, 2))
    reference = sum(confusion(train.TrainParams.reference("rbf", 0.1, 0.02), s) for s in (0, 1, 2))
    precision, recall = (
        defaults[0] / (defaults[0] + defaults[1]),
        defaults[0] / (defaults[0] + defaults[2]),
    )
    assert precision >= 0.5 and recall >= 0.85, (precision, recall)
    assert precision > 2 * reference[0] / (reference[0] + reference[1])


def test_the_baselines_are_in_the_manifest_and_the_pack(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    train.train_models(readings(SMALL), store)
    from_pack = store_baselines(tmp_path)
    (tmp_path / PACK_NAME).unlink()
    from_manifest = store_baselines(tmp_path)
    assert from_pack == from_manifest and set(from_pack) == set(SMALL)
    assert all(isinstance(found, Baseline) for found in from_pack.values())


def test_a_model_saved_without_a_baseline_has_drift_unknown(tmp_path: Path) -> None:
    """Models trained before baselines were kept still load and score; their drift is unknown."""
    store = ModelStore(tmp_path)
    X = np.random.default_rng(0).normal(size=(50, 1))
    store.save("old", "s", fitted_pipeline(X, ),
               training_rows=50, params={})  # fmt: skip
    write_pack(store)
    assert store_baselines(tmp_path) == {("old", "s"): None}


def test_a_trained_model_is_the_one_a_plain_fit_gives(tmp_path: Path) -> None:
    """Training skips scikit-learn's per-fit input checks (done once for all pairs): the fitted
    numbers must be exactly those of the same fit made with the checks on."""
    frame = readings(SMALL, seed=4)
    store = ModelStore(tmp_path)
    train.train_models(frame, store)
    for device, sensor in SMALL:
        X = frame.query("Device == @device and Sensor == @sensor")[["Value"]].to_numpy()
        plain, _ = train.fit_model(X, train.TrainParams())
        trained = store.load(device, sensor).pipeline
        for name in ("mean_", "scale_"):
            np.testing.assert_array_equal(getattr(trained[0], name), getattr(plain[0], name))
        for name in ("support_vectors_", "dual_coef_", "intercept_", "offset_"):
            np.testing.assert_array_equal(getattr(trained[1], name), getattr(plain[1], name))


def test_bulk_training_flushes_once_before_the_manifest_not_once_per_file(tmp_path, monkeypatch):
    """An fsync per model file cost more than the fit; the files must still be on disk before
    the manifest that names them (one flush of everything, then the manifest)."""
    from scoring.models import store as store_module

    events: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(store_module.os, "fsync", lambda fd: events.append("fsync"))
    monkeypatch.setattr(store_module.os, "sync", lambda: events.append("sync everything"))

    def syncfs(handle):  # the store's own file system, flushed once (man 2 syncfs)
        assert os.fstat(handle).st_dev == os.stat(tmp_path).st_dev
        events.append("sync")
        return 0

    monkeypatch.setattr(store_module, "_libc_syncfs", lambda: syncfs)

    def replace(src, dst):
        events.append(f"replace {Path(dst).name}")
        real_replace(src, dst)

    real_write_new = store_module._write_new

    def write_new(path, data, *, durable):  # a model file: a new name, written in place
        events.append(f"write {path.name}")
        return real_write_new(path, data, durable=durable)

    monkeypatch.setattr("scoring.data.files.os.replace", replace)
    monkeypatch.setattr(store_module, "_write_new", write_new)
    report = train.train_models(readings(SMALL), ModelStore(tmp_path))
    assert len(report.trained) == len(SMALL)
    manifest = events.index("replace manifest.json")
    model_files = [i for i, e in enumerate(events) if e.endswith(".model.json")]
    assert len(model_files) == len(SMALL)
    assert events.count("sync") == 1 and max(model_files) < events.index("sync") < manifest
    assert events.count("fsync") == 1, events  # the manifest's own


def test_the_probes_recorded_at_training_are_scikit_learns_answers(tmp_path: Path) -> None:
    """Training answers the probes through libsvm directly (direct_fit.Answers): scikit-learn's
    own values, bit for bit, so exactly the check a scikit-learn upgrade and the promotion gate
    apply passes."""
    from scoring.models.store import probe_outputs, probes_agree

    store = ModelStore(tmp_path)
    train.train_models(readings(SMALL, seed=9), store)
    for device, sensor in SMALL:
        entry = store.entry(device, sensor)
        inputs = np.asarray(entry["probes"]["inputs"])
        exact = probe_outputs(store.load(device, sensor).pipeline, inputs)
        assert probes_agree(exact, np.asarray(entry["probes"]["outputs"]))
        assert entry["probes"]["outputs"] == exact.tolist()
