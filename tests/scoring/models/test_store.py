"""The model store: manifest, atomic writes, safe loading, corruption and upgrades."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import sklearn
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from scoring.models import store as model_store
from scoring.models.store import (
    MANIFEST_NAME,
    ModelLoadError,
    ModelNotFoundError,
    ModelStore,
    ModelStoreError,
)
from tests.fixtures.models import fitted_pipeline, model_files

PARAMS = {"kernel": "rbf", "gamma": "scale", "nu": 0.05}


def fitted(seed: int = 0, rows: int = 120, mean: float = 20.0) -> Pipeline:
    rng = np.random.default_rng(seed)
    X = rng.normal(mean, 2.0, size=(rows, 1))
    return fitted_pipeline(X, nu=0.05)


def manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))


def rewrite_entry(root: Path, **changes) -> None:
    """Edit the single model entry of a store's manifest in place (a tampering attacker)."""
    document = manifest(root)
    document["models"][0].update(changes)
    (root / MANIFEST_NAME).write_text(json.dumps(document), encoding="utf-8")


@pytest.fixture()
def store_with_one(tmp_path: Path) -> tuple[ModelStore, Pipeline, str]:
    store = ModelStore(tmp_path / "models")
    pipeline = fitted()
    version = store.save("dev-001", "temperature", pipeline, training_rows=120, params=PARAMS)
    return store, pipeline, version


def test_manifest_records_what_a_model_needs(store_with_one) -> None:
    store, _, version = store_with_one
    document = manifest(store.root)
    assert document["format"] == 1
    assert document["written_with"] == {
        "scikit-learn": sklearn.__version__,
        "skops": model_store.skops.__version__,
        "numpy": np.__version__,
    }
    (entry,) = document["models"]
    assert (entry["device"], entry["sensor"], entry["version"]) == (
        "dev-001",
        "temperature",
        version,
    )
    file = store.root / entry["file"]
    assert file.is_file() and file.name.endswith(".model.json"), "the default model is JSON"
    assert entry["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert version.endswith(entry["sha256"][:12]), "version must carry the content hash"
    assert entry["training_rows"] == 120
    assert entry["params"] == PARAMS
    assert entry["features"] == ["Value"]
    assert entry["sklearn_version"] == sklearn.__version__
    assert len(entry["probes"]["inputs"]) == len(entry["probes"]["outputs"]) >= 5
    outputs = np.asarray(entry["probes"]["outputs"])
    assert (outputs > 0).any() and (outputs < 0).any(), "probes must straddle the boundary"
    assert store.keys() == [("dev-001", "temperature")]


def test_load_round_trip_gives_the_same_model(store_with_one) -> None:
    store, pipeline, version = store_with_one
    loaded = ModelStore(store.root).load("dev-001", "temperature")
    X = np.linspace(5, 35, 50).reshape(-1, 1)
    assert loaded.version == version
    assert (loaded.device, loaded.sensor, loaded.features) == ("dev-001", "temperature", ("Value",))
    np.testing.assert_array_equal(
        loaded.pipeline.decision_function(X), pipeline.decision_function(X)
    )


def test_retrain_gives_a_new_version_and_removes_the_old_file(store_with_one) -> None:
    store, _, first = store_with_one
    old_file = store.root / manifest(store.root)["models"][0]["file"]
    second = store.save("dev-001", "temperature", fitted(seed=1), training_rows=90, params=PARAMS)
    assert second != first
    assert not old_file.exists(), "superseded model file left behind"
    assert ModelStore(store.root).load("dev-001", "temperature").version == second
    assert len(model_files(store.root)) == 1


def test_bulk_saves_write_the_manifest_once(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for device in ("a", "b", "c"):
        store.save(device, "s", fitted(), training_rows=120, params=PARAMS, write_manifest=False)
    assert not (tmp_path / MANIFEST_NAME).exists()
    store.write_manifest()
    assert ModelStore(tmp_path).keys() == [("a", "s"), ("b", "s"), ("c", "s")]


@pytest.mark.parametrize(
    ("device", "sensor"),
    [("../../etc", "passwd"), ("dev/1", "temp.x"), ("..", "."), ("Gerät ü", "温度 %41")],
)
def test_names_are_encoded_inside_the_store(tmp_path: Path, device: str, sensor: str) -> None:
    root = tmp_path / "store"
    store = ModelStore(root)
    store.save(device, sensor, fitted(), training_rows=120, params=PARAMS)
    (file,) = model_files(root)
    assert file.resolve().is_relative_to(root.resolve())
    assert file.parent.parent == root, f"{file} must sit one folder below the root"
    assert ModelStore(root).load(device, sensor).device == device


def test_empty_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelStoreError, match="non-empty"):
        ModelStore(tmp_path).save("", "s", fitted(), training_rows=1, params={})


def _no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_failed_manifest_write_keeps_the_old_store(store_with_one, monkeypatch) -> None:
    store, _, version = store_with_one
    before = (store.root / MANIFEST_NAME).read_bytes()
    real_replace = os.replace

    def fail_on_manifest(src, dst):
        if Path(dst).name == MANIFEST_NAME:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_manifest)
    with pytest.raises(ModelStoreError, match=r"manifest\.json.*disk full"):
        store.save("dev-001", "temperature", fitted(seed=3), training_rows=120, params=PARAMS)
    monkeypatch.undo()
    assert (store.root / MANIFEST_NAME).read_bytes() == before
    assert ModelStore(store.root).load("dev-001", "temperature").version == version
    assert _no_temp_files(store.root)


def test_failed_model_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    real_write = os.write

    def fail_after_a_part(handle, data):
        real_write(handle, bytes(data[:10]))  # a part reached the file, then the disk filled
        raise OSError("no space left")

    monkeypatch.setattr(os, "write", fail_after_a_part)
    with pytest.raises(ModelStoreError, match=r"Device='d' Sensor='s'.*no space left"):
        ModelStore(tmp_path).save("d", "s", fitted(), training_rows=120, params=PARAMS)
    assert not model_files(tmp_path)
    assert _no_temp_files(tmp_path)


def test_a_new_model_file_is_written_in_place_and_an_existing_name_replaced_atomically(
    tmp_path: Path, monkeypatch
) -> None:
    # A new file's name is named by no manifest until every file of the bulk is written, so it
    # needs no temporary file; a name that exists may be open in a reader: temp + rename.
    replaced: list[str] = []
    real_replace = os.replace

    def recording_replace(src, dst):
        replaced.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    old_umask = os.umask(0o077)  # the files keep the store's mode, whatever the umask
    try:
        store = ModelStore(tmp_path / "models")
        store.save("d", "s", fitted(), training_rows=120, params=PARAMS)
        (path,) = model_files(store.root)
        assert replaced == [MANIFEST_NAME]
        assert path.stat().st_mode & 0o777 == 0o644
        saved = model_store.serialize_model(
            "d", "s", fitted(seed=1), training_rows=120, params=PARAMS
        )
        saved.entry["file"] = path.relative_to(store.root).as_posix()  # the same name again
        model_store.write_model_file(store.root, saved, durable=False)
    finally:
        os.umask(old_umask)
    assert replaced == [MANIFEST_NAME, path.name]
    assert path.read_bytes() == saved.data
    assert path.stat().st_mode & 0o777 == 0o644
    assert _no_temp_files(store.root)


def test_a_line_made_beside_an_entry_is_written_only_while_that_entry_is_the_pairs(
    tmp_path: Path,
) -> None:
    """Training's workers make each entry's manifest line; the manifest uses it while that
    very entry is the pair's, and the entry's own JSON otherwise."""
    store = ModelStore(tmp_path / "models")
    store.save("d", "s", fitted(), training_rows=120, params=PARAMS)
    saved = model_store.serialize_model("d", "s", fitted(seed=1), training_rows=120, params=PARAMS)
    model_store.write_model_file(store.root, saved, durable=False)
    line = model_store.manifest_line(saved.entry)
    store.record_written(saved.entry, line=line)
    text = (store.root / MANIFEST_NAME).read_text(encoding="utf-8")
    assert "  " + line + "\n" in text
    assert manifest(store.root)["models"] == [saved.entry]
    # the same pair recorded again without a line: the old line must not come back
    again = model_store.serialize_model("d", "s", fitted(seed=2), training_rows=120, params=PARAMS)
    model_store.write_model_file(store.root, again, durable=False)
    store.record_written(again.entry, write_manifest=False, line=line)
    newer = dict(again.entry, training_rows=121)
    store.record_written(newer, write_manifest=False)
    store.write_manifest()
    assert manifest(store.root)["models"] == [newer]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_a_bulk_flushes_the_stores_own_file_system_with_libcs_syncfs(tmp_path: Path) -> None:
    assert model_store._libc_syncfs() is not None
    model_store._flush_to_disk(tmp_path)  # the real call: returns 0, or raises


def test_a_flush_that_fails_stops_the_manifest_naming_the_store(tmp_path: Path, monkeypatch):
    def failing_syncfs(handle):
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(model_store, "_libc_syncfs", lambda: failing_syncfs)
    store = ModelStore(tmp_path / "models")
    store.save("d", "s", fitted(), training_rows=120, params=PARAMS, write_manifest=False)
    with pytest.raises(
        ModelStoreError,
        match=r"models: the model files could not be flushed to disk .*Input/output error",
    ):
        store.write_manifest()
    assert not (store.root / MANIFEST_NAME).exists()


# --------------------------------------------------------------------- safe loading

CONSTRUCTED: list[str] = []


class SneakyScaler(StandardScaler):
    """A type outside the allow-list whose construction would be observable."""

    def __setstate__(self, state):
        CONSTRUCTED.append("SneakyScaler")
        super().__setstate__(state)


def _plant(store: ModelStore, estimator) -> Path:
    """Replace the store's single model file by ``estimator`` saved with skops under the
    name a skops file of that version has, and fix up the manifest entry."""
    entry = manifest(store.root)["models"][0]
    old = store.root / entry["file"]
    path = old.with_name(old.name.removesuffix(".model.json").removesuffix(".skops") + ".skops")
    old.unlink()
    sio.dump(estimator, path)
    relpath = path.relative_to(store.root).as_posix()
    rewrite_entry(store.root, file=relpath, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def _as_skops(store: ModelStore) -> Path:
    """The store as an earlier release wrote it: its one default model as a skops file."""
    return _plant(store, ModelStore(store.root).load("dev-001", "temperature").pipeline)


def _rewrite_state(store: ModelStore, edit) -> Path:
    """Edit the JSON of the store's single (state format) model file, fix up the sha256."""
    path = store.root / manifest(store.root)["models"][0]["file"]
    document = json.loads(path.read_bytes())
    edit(document)
    path.write_bytes(json.dumps(document).encode())
    rewrite_entry(store.root, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def test_a_store_of_skops_files_still_loads(store_with_one) -> None:
    """Stores written before the JSON format: the same model, the same answers."""
    store, pipeline, _ = store_with_one
    path = _as_skops(store)
    loaded = ModelStore(store.root).load("dev-001", "temperature")
    assert loaded.file == path
    X = np.linspace(5, 35, 50).reshape(-1, 1)
    np.testing.assert_array_equal(
        loaded.pipeline.decision_function(X), pipeline.decision_function(X)
    )


def test_a_file_with_an_untrusted_type_is_refused(store_with_one) -> None:
    store, _, _ = store_with_one
    X = np.arange(20.0).reshape(-1, 1)
    sneaky = Pipeline([("scale", SneakyScaler()), ("svm", OneClassSVM())]).fit(X)
    path = _plant(store, sneaky)
    CONSTRUCTED.clear()
    with pytest.raises(ModelLoadError) as caught:
        ModelStore(store.root).load("dev-001", "temperature")
    message = str(caught.value)
    assert "untrusted" in message and f"{__name__}.SneakyScaler" in message
    assert str(path) in message and "dev-001" in message and "temperature" in message
    assert CONSTRUCTED == [], "the untrusted type was constructed"


@pytest.mark.parametrize(
    ("class_name", "refused"),
    [(f"{__name__}.SneakyScaler", "refused type"), ("os.system", "refused type")],
)
def test_a_state_file_naming_another_type_is_refused(store_with_one, class_name, refused):
    store, _, _ = store_with_one

    def swap_the_scaler(document):
        step = document["model"]["estimator"]["state"]["steps"][0]["tuple"][1]
        step["estimator"]["class"] = class_name

    path = _rewrite_state(store, swap_the_scaler)
    CONSTRUCTED.clear()
    with pytest.raises(ModelLoadError) as caught:
        ModelStore(store.root).load("dev-001", "temperature")
    message = str(caught.value)
    assert refused in message and class_name in message and str(path) in message
    assert CONSTRUCTED == []


@pytest.mark.parametrize(
    ("edit", "refused"),
    [
        (lambda svm: svm.update(__class__="x"), "refused attribute name '__class__'"),
        (
            lambda svm: svm["support_"]["ndarray"].update(dtype="|O"),
            "refused array dtype '|O'",
        ),
        (lambda svm: svm["support_"]["ndarray"].update(shape=[99]), "do not make an array"),
        (lambda svm: svm.update(kernel={"call": "os.system"}), "unknown tag 'call'"),
    ],
)
def test_a_state_file_with_anything_else_is_refused(store_with_one, edit, refused) -> None:
    store, _, _ = store_with_one

    def edit_the_svm(document):
        edit(document["model"]["estimator"]["state"]["steps"][1]["tuple"][1]["estimator"]["state"])

    _rewrite_state(store, edit_the_svm)
    with pytest.raises(ModelLoadError, match=re.escape(refused)):
        ModelStore(store.root).load("dev-001", "temperature")


def test_save_refuses_a_model_that_could_not_be_loaded_safely(tmp_path: Path) -> None:
    sneaky = Pipeline([("scale", SneakyScaler()), ("svm", OneClassSVM())])
    sneaky.fit(np.arange(20.0).reshape(-1, 1))
    with pytest.raises(ModelStoreError, match="SneakyScaler"):
        ModelStore(tmp_path).save("d", "s", sneaky, training_rows=20, params={})
    assert not model_files(tmp_path)


def test_extra_trusted_types_can_be_allowed(tmp_path: Path) -> None:
    """A type beyond the default model's is saved with skops, and loads where it is trusted."""
    sneaky = Pipeline([("scale", SneakyScaler()), ("svm", OneClassSVM())])
    sneaky.fit(np.arange(20.0).reshape(-1, 1))
    trusted = [f"{__name__}.SneakyScaler"]
    ModelStore(tmp_path, extra_trusted_types=trusted).save(
        "dev-001", "temperature", sneaky, training_rows=20, params={}
    )
    assert [p.suffix for p in model_files(tmp_path)] == [".skops"]
    opened = ModelStore(tmp_path, extra_trusted_types=trusted)
    assert isinstance(opened.load("dev-001", "temperature").pipeline[0], SneakyScaler)
    with pytest.raises(ModelLoadError, match="untrusted"):
        ModelStore(tmp_path).load("dev-001", "temperature")


def test_a_corrupt_file_is_refused_naming_pair_and_file(store_with_one) -> None:
    store, _, _ = store_with_one
    path = store.root / manifest(store.root)["models"][0]["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError) as caught:
        ModelStore(store.root).load("dev-001", "temperature")
    message = str(caught.value)
    assert "corrupt" in message and str(path) in message
    assert "'dev-001'" in message and "'temperature'" in message


@pytest.mark.parametrize(
    ("skops", "refused"), [(False, "not a state file"), (True, "not a readable skops file")]
)
def test_a_file_that_is_not_a_model_is_refused_even_with_a_matching_hash(
    store_with_one, skops, refused
) -> None:
    store, _, _ = store_with_one
    if skops:
        _as_skops(store)
    path = store.root / manifest(store.root)["models"][0]["file"]
    path.write_bytes(b"not a zip file at all")
    rewrite_entry(store.root, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(ModelLoadError, match=refused):
        ModelStore(store.root).load("dev-001", "temperature")


def test_a_manifest_pointing_outside_the_store_is_refused(store_with_one) -> None:
    store, _, _ = store_with_one
    rewrite_entry(store.root, file="../outside.skops")
    with pytest.raises(ModelLoadError, match="points outside"):
        ModelStore(store.root).load("dev-001", "temperature")


def test_missing_model_and_missing_file(store_with_one) -> None:
    store, _, _ = store_with_one
    with pytest.raises(ModelNotFoundError, match=r"Device='dev-999' Sensor='temperature'"):
        store.load("dev-999", "temperature")
    path = store.root / manifest(store.root)["models"][0]["file"]
    path.unlink()
    with pytest.raises(ModelNotFoundError, match="missing") as caught:
        ModelStore(store.root).load("dev-001", "temperature")
    assert str(path) in str(caught.value)


def test_missing_or_broken_manifest_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelStoreError, match=r"manifest\.json: no model store manifest"):
        ModelStore(tmp_path).keys()
    (tmp_path / MANIFEST_NAME).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelStoreError, match="unreadable manifest"):
        ModelStore(tmp_path).keys()
    (tmp_path / MANIFEST_NAME).write_text('{"format": 1, "models": [{"device": "d"}]}')
    with pytest.raises(ModelStoreError, match="entry #0 lacks sensor, file, version, sha256"):
        ModelStore(tmp_path).keys()


# ------------------------------------------------------------------ upgrade safety

UPGRADE = r"saved with scikit-learn .+, running 99\.0: retrain with `batchscore train`"


def test_upgrade_with_matching_probes_loads(store_with_one, monkeypatch) -> None:
    store, pipeline, version = store_with_one
    monkeypatch.setattr(model_store, "running_sklearn_version", lambda: "99.0")
    assert ModelStore(store.root).load("dev-001", "temperature").version == version


def test_upgrade_with_changed_results_asks_for_a_retrain(store_with_one, monkeypatch) -> None:
    store, _, _ = store_with_one
    outputs = manifest(store.root)["models"][0]["probes"]["outputs"]
    rewrite_entry(
        store.root,
        probes={
            "inputs": manifest(store.root)["models"][0]["probes"]["inputs"],
            "outputs": [value + 1e-3 for value in outputs],
        },
    )
    # Same version: probes are not re-checked, the model loads.
    ModelStore(store.root).load("dev-001", "temperature")
    monkeypatch.setattr(model_store, "running_sklearn_version", lambda: "99.0")
    with pytest.raises(ModelLoadError, match=UPGRADE) as caught:
        ModelStore(store.root).load("dev-001", "temperature")
    assert "different results on its probe inputs" in str(caught.value)
    assert "dev-001" in str(caught.value)


@pytest.mark.parametrize("skops", [False, True])
def test_upgrade_that_breaks_loading_asks_for_a_retrain(store_with_one, monkeypatch, skops):
    store, _, _ = store_with_one
    path = _as_skops(store) if skops else store.root / manifest(store.root)["models"][0]["file"]

    def incompatible(*args, **kwargs):
        raise AttributeError("OneClassSVM has no attribute '_new_internal'")

    monkeypatch.setattr(model_store, "running_sklearn_version", lambda: "99.0")
    monkeypatch.setattr(model_store.sio, "loads", incompatible)
    # the state format rebuilds through scikit-learn's own __setstate__: where it would break
    monkeypatch.setattr(OneClassSVM, "__setstate__", incompatible, raising=False)
    with pytest.raises(ModelLoadError, match=UPGRADE) as caught:
        ModelStore(store.root).load("dev-001", "temperature")
    assert "_new_internal" in str(caught.value) and str(path) in str(caught.value)


def test_upgrade_without_probes_cannot_be_verified(store_with_one, monkeypatch) -> None:
    store, _, _ = store_with_one
    rewrite_entry(store.root, probes={})
    monkeypatch.setattr(model_store, "running_sklearn_version", lambda: "99.0")
    with pytest.raises(ModelLoadError, match=UPGRADE):
        ModelStore(store.root).load("dev-001", "temperature")


def test_a_name_too_long_for_a_file_still_gets_its_model(tmp_path):
    """A Device of 100 x "é" fits the table's column but not a file name once encoded."""
    import numpy as np

    store = model_store.ModelStore(tmp_path / "models")
    X = np.random.default_rng(0).normal(0, 1, size=(50, 1))
    model = fitted_pipeline(X)
    long = "é" * 100
    store.save(long, "temperature", model, training_rows=50, params={})
    store.save("dev-1", "temperature", model, training_rows=50, params={})
    entry = store.entry(long, "temperature")
    assert entry["file"].startswith("_long-names/")
    assert all(len(part.encode()) <= 255 for part in Path(entry["file"]).parts)
    again = model_store.ModelStore(tmp_path / "models")
    X_new = np.array([[0.0], [9.0]])
    assert again.load(long, "temperature").pipeline.predict(X_new).tolist() == [1, -1]
    assert again.entry("dev-1", "temperature")["file"].startswith("dev-1/")
