"""The Azure ML parallel entry script, imported as a module and loaded from a code snapshot."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from scoring.data.schema import PREDICTION_COLUMNS
from scoring.models.predictor import PartitionError
from scoring.models.store import ModelLoadError, ModelStore
from scoring.steps import score
from tests.fixtures.models import default_pipeline

SCORING_DIR = Path(__file__).resolve().parents[3] / "scoring"
MEANS = {("dev-001", "temperature"): 21.0, ("dev-002", "vibration"): 0.5}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    store = ModelStore(root)
    rng = np.random.default_rng(3)
    for (device, sensor), mean in MEANS.items():
        X = rng.normal(mean, 1.0, size=(300, 1))
        pipeline = default_pipeline(nu=0.02)
        store.save(device, sensor, pipeline.fit(X), training_rows=300, params={})
    return root


def values_around(mean: float, n: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(mean, 2.0, n), [mean - 30.0, mean + 30.0]])


def context(device: str, sensor: str, index: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        partition_key_value={"Device": device, "Sensor": sensor}, minibatch_index=index
    )


@pytest.fixture()
def ready(models: Path, monkeypatch) -> Path:
    # The job passes flags of its own: parse_known_args must ignore them.
    argv = ["score.py", "--models", str(models), "--unknown-flag", "x", "--log-level", "INFO"]
    monkeypatch.setattr(sys, "argv", argv)
    score.init()
    yield models
    score.shutdown()
    score._predictor = None


def test_keys_from_the_context_and_labels_equal_sklearn_predict(ready: Path) -> None:
    values = values_around(21.0)
    frame = pd.DataFrame(
        {"TS": pd.date_range("2026-03-01", periods=len(values), freq="min"), "Value": values}
    )
    out = score.run(frame, context("dev-001", "temperature", 7))
    pipeline = ModelStore(ready).load("dev-001", "temperature").pipeline
    assert list(out.columns) == list(PREDICTION_COLUMNS)
    assert len(out) == len(values)
    assert (out["Device"] == "dev-001").all() and (out["Sensor"] == "temperature").all()
    expected = (pipeline.predict(values.reshape(-1, 1)) == -1).astype(int)
    np.testing.assert_array_equal(out["IsAnomaly"].to_numpy(), expected)
    assert out["IsAnomaly"].iloc[-2:].tolist() == [1, 1]


@pytest.mark.parametrize("with_key_column", [True, False])
def test_a_shard_is_scored_with_or_without_its_key_column(ready: Path, with_key_column) -> None:
    """The driver hands a shard's rows with the partition key as a column, or without it."""
    frame = pd.DataFrame(
        {
            "TS": pd.date_range("2026-03-01", periods=4, freq="min"),
            "Device": ["dev-001", "dev-001", "dev-002", "dev-002"],
            "Sensor": ["temperature", "temperature", "vibration", "vibration"],
            "Value": [21.0, 60.0, 0.5, 0.4],
        }
    )
    if with_key_column:
        frame["Shard"] = "00003"
    shard = SimpleNamespace(partition_key_value={"Shard": "00003"}, minibatch_index=3)
    out = score.run(frame, shard)
    assert len(out) == 4 and "Shard" not in out.columns
    assert out["Status"].tolist() == ["ok"] * 4
    assert out["IsAnomaly"].tolist()[:2] == [0, 1]


def test_keys_given_as_columns_win(ready: Path) -> None:
    frame = pd.DataFrame(
        {"ts": ["2026-03-01T00:00:00"], "device": ["dev-002"], "sensor": ["vibration"]}
        | {"value": [0.5]}
    )
    out = score.run(frame, context("ignored", "ignored"))
    assert out[["Device", "Sensor"]].iloc[0].tolist() == ["dev-002", "vibration"]


def test_a_missing_model_is_answered_no_model_in_a_pair_mini_batch_too(ready: Path) -> None:
    """The same answer a shard gives (and a readings file under the local runner): no retries
    of a mini-batch that cannot succeed, no traceback, every row answered."""
    frame = pd.DataFrame({"TS": pd.date_range("2026-03-01", periods=2, freq="min")})
    out = score.run(frame.assign(Value=1.0), context("dev-404", "temperature"))
    assert out["Status"].tolist() == ["no_model", "no_model"]
    assert out["Score"].isna().all() and set(out["Device"]) == {"dev-404"}


def test_a_damaged_model_still_fails_a_pair_mini_batch(models: Path, tmp_path, monkeypatch):
    """A retry may read a damaged file whole: that mini-batch fails (and is retried)."""
    damaged = shutil.copytree(models, tmp_path / "models")
    (damaged / ModelStore(damaged).entry("dev-001", "temperature")["file"]).write_bytes(b"x")
    monkeypatch.setattr(sys, "argv", ["score.py", "--models", str(damaged)])
    score.init()
    frame = pd.DataFrame({"TS": [pd.Timestamp("2026-03-01")], "Value": [1.0]})
    with pytest.raises(ModelLoadError, match="dev-001"):
        score.run(frame, context("dev-001", "temperature"))
    score._predictor = None


def test_empty_partition_returns_an_empty_frame(ready: Path) -> None:
    out = score.run(pd.DataFrame({"TS": [], "Value": []}), context("dev-404", "x"))
    assert out.empty and list(out.columns) == list(PREDICTION_COLUMNS)


def test_every_input_row_is_answered_and_bad_ones_say_why(ready: Path, caplog) -> None:
    frame = pd.DataFrame(
        {"TS": pd.date_range("2026-03-01", periods=3, freq="min"), "Value": [21.0, "?", 20.0]}
    )
    with caplog.at_level(logging.WARNING):
        out = score.run(frame, context("dev-001", "temperature", 3))
    assert len(out) == 3, "Azure ML fails and retries a mini-batch that returns short"
    assert out["Status"].tolist() == ["ok", "invalid_value", "ok"]
    assert out["Score"].isna().tolist() == [False, True, False]
    assert "mini-batch 3 (Device='dev-001' Sensor='temperature'): 1 of 3 rows not scored" in (
        caplog.text
    )


def test_folder_values_are_decoded_from_columns_and_context(models: Path, monkeypatch) -> None:
    """mltable hands the raw folder values (percent-encoding kept) in the key columns."""
    store = ModelStore(models)
    X = np.random.default_rng(4).normal(5.0, 1.0, size=(200, 1))
    pipeline = default_pipeline(nu=0.02)
    store.save("plant 7.a/é", "temp C", pipeline.fit(X), training_rows=200, params={})
    monkeypatch.setattr(sys, "argv", ["score.py", "--models", str(models)])
    score.init()
    raw = {"Device": "plant%207%2Ea%2F%C3%A9", "Sensor": "temp%20C"}
    frame = pd.DataFrame(
        {"TS": pd.date_range("2026-03-01", periods=2, freq="min"), "Value": [5.0, 5.2]} | raw
    )
    out = score.run(frame, context(*raw.values()))
    assert out["Device"].unique().tolist() == ["plant 7.a/é"]
    assert out["Sensor"].unique().tolist() == ["temp C"]
    assert out["Status"].tolist() == ["ok", "ok"]
    keyless = score.run(frame.drop(columns=["Device", "Sensor"]), context(*raw.values()))
    assert keyless["Device"].unique().tolist() == ["plant 7.a/é"]
    score._predictor = None


def test_a_foreign_folder_value_fails_its_mini_batch_by_name(ready: Path) -> None:
    frame = pd.DataFrame({"TS": [pd.Timestamp("2026-03-01")], "Value": [1.0], "Device": ["%FF"]})
    with pytest.raises(Exception, match=r"Device folder value '%FF' is not a percent-encoded"):
        score.run(frame.assign(Sensor="temperature"), context("%FF", "temperature"))


def test_predictions_parts_and_failures_are_written_for_the_publish_step(
    models: Path, tmp_path, monkeypatch
) -> None:
    from scoring.data import scored_parts

    scored = tmp_path / "scored"
    monkeypatch.setattr(
        sys, "argv", ["score.py", "--models", str(models), "--predictions-dir", str(scored)]
    )
    score.init()
    frame = pd.DataFrame({"TS": pd.date_range("2026-03-01", periods=3, freq="min")})
    good = frame.assign(Value=[21.0, None, 20.0])
    out = score.run(good, context("dev-001", "temperature"))
    score.run(good, context("dev-001", "temperature"))  # a retry overwrites, never duplicates
    missing = score.run(frame.assign(Value=1.0), context("dev-404", "temperature"))
    assert set(missing["Status"]) == {"no_model"}  # answered, so it has its part too
    with pytest.raises(PartitionError):
        score.run(frame.assign(Value=1.0), context("%FF", "temperature"))
    parts = {
        tuple(table.column("Device").unique().to_pylist()): table.to_pandas()
        for _, table in scored_parts.iter_parts(scored)
    }
    assert sorted(parts) == [("dev-001",), ("dev-404",)]
    pd.testing.assert_series_equal(parts[("dev-001",)]["Status"], out["Status"], check_dtype=False)
    (failure,) = scored_parts.read_failures(scored)
    assert failure["keys"] == {"Device": "%FF", "Sensor": "temperature"}
    assert failure["rows"] == 3 and "%FF" in failure["reason"]
    score._predictor = None


def test_file_list_input_takes_keys_from_the_partition_folders(ready: Path, tmp_path) -> None:
    folder = tmp_path / "Device=dev-002" / "Sensor=vibration"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {"TS": pd.date_range("2026-03-01", periods=4, freq="min"), "Value": 0.5}
    ).to_parquet(folder / "part-0.parquet")
    out = score.run([str(folder / "part-0.parquet")], SimpleNamespace(minibatch_index=0))
    assert len(out) == 4 and set(out["Device"]) == {"dev-002"}


def test_run_before_init_is_an_error() -> None:
    score._predictor = None
    with pytest.raises(score.EntryScriptError, match="before init"):
        score.run(pd.DataFrame(), None)


def test_init_names_a_missing_or_wrong_models_flag(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    monkeypatch.setattr(sys, "argv", ["score.py"])
    with pytest.raises(score.EntryScriptError, match="--models DIR is required"):
        score.init()
    monkeypatch.setattr(sys, "argv", ["score.py", "--models", str(tmp_path / "nope")])
    with pytest.raises(score.EntryScriptError, match="no such folder"):
        score.init()
    monkeypatch.setattr(sys, "argv", ["score.py", "--models", str(tmp_path)])
    with pytest.raises(Exception, match="no model store manifest"):
        score.init()


# The driver Azure ML effectively runs: load score.py by path under another module name,
# call init/run/shutdown, and report what it saw.
DRIVER = textwrap.dedent(
    """
    import importlib, importlib.util, json, sys
    import pandas as pd
    from types import SimpleNamespace

    snapshot, models, loaded_as = sys.argv[1], sys.argv[2], sys.argv[3]
    sys.argv = ["driver", "--models", models, "--error_threshold", "5", "--log-level", "INFO"]
    # No editable install, no PYTHONPATH: only the snapshot can give `scoring`.
    sys.meta_path = [finder for finder in sys.meta_path if "__editable__" not in repr(finder)]
    assert importlib.util.find_spec("scoring") is None, "scoring importable without the snapshot"
    if loaded_as == "module":  # the driver: the snapshot on sys.path, steps/score.py as steps.score
        sys.path.insert(0, snapshot)
        entry = importlib.import_module("steps.score")
        assert entry.__package__ == "steps"
    else:  # a file loaded by path under another name
        entry_script = snapshot + "/steps/score.py"
        spec = importlib.util.spec_from_file_location("azureml_user_entry", entry_script)
        entry = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(entry)
    entry.init()
    frame = pd.DataFrame({"TS": pd.date_range("2026-03-01", periods=3, freq="min"),
                          "Value": [21.0, 21.5, 90.0]})
    ctx = SimpleNamespace(partition_key_value={"Device": "dev-001", "Sensor": "temperature"},
                          minibatch_index=0)
    out = entry.run(frame, ctx)
    missing = entry.run(frame, SimpleNamespace(partition_key_value={"Device": "x", "Sensor": "y"},
                                               minibatch_index=1))["Status"].unique().tolist()
    entry.shutdown()
    print(json.dumps({
        "package_file": sys.modules["scoring"].__file__,
        "columns": list(out.columns),
        "anomalies": out["IsAnomaly"].tolist(),
        "missing": missing,
    }))
    """
)


@pytest.mark.parametrize("loaded_as", ["module", "file"])
def test_loads_from_a_code_snapshot_however_the_driver_imports_it(
    models: Path, tmp_path: Path, loaded_as: str
) -> None:
    """Azure ML's parallel driver imports the entry script by a module name made from its path
    (``steps/score.py`` -> ``steps.score``, ``__package__`` "steps") with the snapshot folder on
    ``sys.path``; the image's PYTHONPATH may or may not hold the package. Either way the entry
    script must find its own package, the snapshot it sits in."""
    snapshot = tmp_path / "snapshot"  # not named "scoring", like Azure ML's code folder
    shutil.copytree(SCORING_DIR, snapshot, ignore=shutil.ignore_patterns("__pycache__"))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-I", str(driver), str(snapshot), str(models), loaded_as],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout.strip().splitlines()[-1])
    assert Path(seen["package_file"]).parent == snapshot, "scoring came from somewhere else"
    assert seen["columns"] == list(PREDICTION_COLUMNS)
    assert seen["anomalies"] == [0, 0, 1]
    assert seen["missing"] == ["no_model"]
    assert "entry script done" in completed.stderr
