"""The packed model store: one memory-mapped file serving every compiled model, never stale."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from scoring.models.kernel import FastOneClassSVM
from scoring.models.pack import (
    PACK_NAME,
    PackedStore,
    PackError,
    content_checksums,
    pack_path,
    pack_row,
    park_arrays,
    unpark_arrays,
    write_pack,
)
from scoring.models.store import LoadedModel, ModelStore
from tests.fixtures.models import default_pipeline, fitted_pipeline

NON_DEFAULT_TYPES = ["sklearn.ensemble._iforest.IsolationForest", "sklearn.tree._tree.Tree"]


def _series(rng: np.random.Generator, n: int = 300) -> np.ndarray:
    base = rng.uniform(-50, 50)
    return (base + rng.uniform(0.5, 5) * rng.standard_normal(n)).reshape(-1, 1)


def _save_default(store: ModelStore, device: str, sensor: str, rng, *, manifest=False) -> None:
    X = _series(rng)
    model = default_pipeline(nu=float(rng.uniform(0.01, 0.3)))
    store.save(
        device, sensor, model.fit(X), training_rows=len(X), params={}, write_manifest=manifest
    )


@pytest.fixture()
def store(tmp_path) -> ModelStore:
    rng = np.random.default_rng(0)
    store = ModelStore(tmp_path / "models")
    for device in ("dev-1", "dev.2", "dev/3"):  # names that need encoding in file paths
        for sensor in ("temperature", "pressure"):
            _save_default(store, device, sensor, rng)
    store.write_manifest()
    return store


def _probes(model, rng) -> np.ndarray:
    scaler = model.steps[0][1]
    spread = np.linspace(-8, 8, 4001)[:, None] * scaler.scale_ + scaler.mean_
    return np.concatenate([spread, rng.normal(scaler.mean_, 3 * scaler.scale_, (500, 1))])


def test_packed_models_score_exactly_like_their_skops_files(store):
    summary = write_pack(store)
    assert summary.packed == 6 and summary.reused == 0 and not summary.failed
    assert summary.path == store.root / PACK_NAME
    pack = PackedStore.for_store(ModelStore(store.root))
    assert pack is not None and len(pack) == 6
    rng = np.random.default_rng(1)
    for device, sensor in store.keys():
        loaded = pack.load(store, device, sensor)
        assert isinstance(loaded, LoadedModel) and isinstance(loaded.pipeline, FastOneClassSVM)
        reference = store.load(device, sensor)
        assert loaded.version == reference.version, (device, sensor)
        assert loaded.features == reference.features
        X = _probes(reference.pipeline, rng)
        scores, labels = loaded.pipeline.decide(X)
        assert np.array_equal(labels, reference.pipeline.predict(X)), (device, sensor)
        worst = np.max(np.abs(scores - reference.pipeline.decision_function(X)))
        assert worst <= 1e-9, f"{device}/{sensor}: decision values differ by {worst:g}"


def test_guard_band_rows_of_a_packed_model_use_the_verified_skops_file(store, monkeypatch):
    write_pack(store)
    pack = PackedStore.for_store(store)
    device, sensor = store.keys()[0]
    reference = store.load(device, sensor).pipeline
    loads = []
    original = ModelStore.load

    def counting_load(self, d, s):
        loads.append((d, s))
        return original(self, d, s)

    monkeypatch.setattr(ModelStore, "load", counting_load)
    model = pack.load(store, device, sensor).pipeline
    model.decide(np.array([[reference.steps[0][1].mean_[0]]]))
    assert loads == [], "a row far from the boundary must not read the model file"
    # A point on the boundary: bisect between an inlier and a far outlier.
    a, b = reference.steps[0][1].mean_[0], reference.steps[0][1].mean_[0] + 1e3
    for _ in range(200):
        m = (a + b) / 2
        if m in (a, b):
            break
        a, b = (m, b) if reference.decision_function([[m]])[0] > 0 else (a, m)
    points = np.array([[a], [b]])
    _, labels = model.decide(points)
    assert labels.tolist() == reference.predict(points).tolist() == [1, -1]
    assert loads == [(device, sensor)]


def test_models_that_cannot_be_compiled_stay_out_of_the_pack(tmp_path):
    rng = np.random.default_rng(2)
    store = ModelStore(tmp_path / "models", extra_trusted_types=NON_DEFAULT_TYPES)
    _save_default(store, "dev-1", "temperature", rng)
    forest = IsolationForest(n_estimators=5, random_state=0).fit(_series(rng))
    store.save("dev-1", "vibration", forest, training_rows=300, params={}, write_manifest=False)
    store.write_manifest()
    summary = write_pack(store)
    assert summary.packed == 1 and summary.not_compiled == [("dev-1", "vibration")]
    pack = PackedStore.for_store(store)
    assert pack.load(store, "dev-1", "vibration") is None
    assert pack.load(store, "dev-1", "temperature") is not None


def test_a_changed_store_makes_the_pack_stale_and_a_rebuild_reuses_unchanged_rows(store, caplog):
    write_pack(store)
    _save_default(store, "dev-1", "temperature", np.random.default_rng(9), manifest=True)
    fresh = ModelStore(store.root)
    with caplog.at_level(logging.WARNING):
        assert PackedStore.for_store(fresh) is None
    assert "stale" in caplog.text and str(pack_path(fresh)) in caplog.text
    summary = write_pack(fresh)
    assert summary.packed == 6 and summary.reused == 5
    pack = PackedStore.for_store(fresh)
    loaded = pack.load(fresh, "dev-1", "temperature")
    assert loaded.version == fresh.entry("dev-1", "temperature")["version"]


def test_a_row_for_another_model_file_is_never_served(store):
    write_pack(store)
    pack = PackedStore.for_store(store)
    device, sensor = store.keys()[0]
    assert pack.fast_model(device, sensor, sha256="0" * 64) is None
    assert pack.fast_model(device, sensor, sha256=store.entry(device, sensor)["sha256"])
    assert pack.fast_model("no-such-device", sensor) is None


@pytest.mark.parametrize("content", [b"", b"garbage, not arrow", b"ARROW1\x00\x00" + b"\x00" * 64])
def test_a_corrupt_pack_is_named_ignored_and_rebuilt(store, content, caplog):
    pack_path(store).write_bytes(content)
    with pytest.raises(PackError, match=PACK_NAME):
        PackedStore.open(pack_path(store))
    with caplog.at_level(logging.WARNING):
        assert PackedStore.for_store(store) is None
    assert PACK_NAME in caplog.text
    assert write_pack(store).packed == 6
    assert PackedStore.for_store(store) is not None


def test_a_pack_of_another_kernel_version_is_refused(store, monkeypatch):
    write_pack(store)
    monkeypatch.setattr("scoring.models.pack.KERNEL_ID", "taylor-99")
    with pytest.raises(PackError, match="another kernel version"):
        PackedStore.open(pack_path(store))


def test_a_model_that_fails_to_load_is_reported_and_the_others_packed(store):
    device, sensor = store.keys()[2]
    (store.root / store.entry(device, sensor)["file"]).write_bytes(b"tampered")
    summary = write_pack(store)
    assert summary.packed == 5
    assert len(summary.failed) == 1 and device in summary.failed[0]


def test_packed_without_its_store_a_guard_row_raises_a_clear_error(store):
    write_pack(store)
    pack = PackedStore.for_store(store)
    device, sensor = store.keys()[0]
    model = pack.fast_model(device, sensor)
    with pytest.raises(PackError, match="without its model store"):
        model.exact()


def test_a_store_without_a_pack_is_reported_not_an_error(store, caplog):
    with caplog.at_level(logging.INFO):
        assert PackedStore.for_store(store) is None
    assert "no model pack" in caplog.text


def _readings(device: str, sensor: str, values: np.ndarray):
    import pandas as pd

    return pd.DataFrame(
        {
            "TS": pd.date_range("2026-03-01", periods=len(values), freq="min"),
            "Device": device,
            "Sensor": sensor,
            "Value": values,
        }
    )


def test_the_predictor_serves_packed_models_without_reading_model_files(store, monkeypatch):
    from scoring.models.predictor import SensorPredictor

    write_pack(store)
    reference = {key: store.load(*key).pipeline for key in store.keys()}
    reads = []
    monkeypatch.setattr(ModelStore, "read_model_bytes", lambda *a: reads.append(a[1:]) or 1 / 0)
    predictor = SensorPredictor(ModelStore(store.root))
    rng = np.random.default_rng(4)
    for (device, sensor), pipeline in reference.items():
        scaler = pipeline.steps[0][1]
        values = rng.normal(scaler.mean_[0], 2 * scaler.scale_[0], 3000)
        out = predictor.score(_readings(device, sensor, values))
        assert isinstance(predictor.model(device, sensor).pipeline, FastOneClassSVM)
        X = values.reshape(-1, 1)
        expected = (pipeline.predict(X) == -1).astype(int)
        assert np.array_equal(out["IsAnomaly"].to_numpy(), expected), (device, sensor)
        assert 0 < expected.sum() < len(values), "need both labels to compare"
        np.testing.assert_allclose(out["Score"], pipeline.decision_function(X), rtol=0, atol=1e-9)
        assert (out["ModelVersion"] == store.entry(device, sensor)["version"]).all()
    assert reads == [], "packed models must not read their skops files"


def test_the_predictor_keeps_scikit_learn_when_asked_or_without_a_pack(store):
    from scoring.models.predictor import SensorPredictor

    device, sensor = store.keys()[0]
    assert not isinstance(SensorPredictor(store).model(device, sensor).pipeline, FastOneClassSVM)
    compiled = SensorPredictor(store, fast=True).model(device, sensor).pipeline
    assert isinstance(compiled, FastOneClassSVM), "fast=True compiles models read from files"
    write_pack(store)
    assert isinstance(SensorPredictor(store).model(device, sensor).pipeline, FastOneClassSVM)
    exact = SensorPredictor(store, fast=False).model(device, sensor).pipeline
    assert not isinstance(exact, FastOneClassSVM), "fast=False must ignore the pack"


def _variants():
    import pandas as pd

    base = _readings("dev-1", "temperature", np.linspace(-60, 60, 50))
    yield "canonical", base, True
    yield "extra columns", base.assign(MinValue=1.0, Quality="good"), True
    yield "padded device", base.assign(Device=" dev-1 "), False
    yield "lower-case names", base.rename(columns=str.lower), False
    yield "text values", base.assign(Value=base["Value"].astype(str)), False
    yield "text timestamps", base.assign(TS=base["TS"].astype(str)), False
    yield "aware timestamps", base.assign(TS=base["TS"].dt.tz_localize("UTC")), False
    missing = ["dev-1"] * 49 + [None]
    yield "one device missing", base.assign(Device=pd.Series(missing, dtype="str")), False
    two = pd.concat([base, base.assign(Sensor="pressure")], ignore_index=True)
    yield "two pairs", two, False


@pytest.mark.parametrize("name, frame, fast_form", list(_variants()), ids=lambda v: str(v)[:18])
def test_partitions_in_contract_form_skip_normalising_with_the_same_result(
    store, monkeypatch, name, frame, fast_form
):
    from scoring.models import predictor as predictor_module
    from scoring.models.predictor import SensorPredictor

    assert predictor_module._in_contract_form(frame) is fast_form, name
    quick = SensorPredictor(store).score(frame)
    monkeypatch.setattr(predictor_module, "_in_contract_form", lambda frame: False)
    normalised = SensorPredictor(store).score(frame)
    assert len(quick) == len(normalised) >= len(frame) - 1
    np.testing.assert_array_equal(quick["Score"], normalised["Score"])
    assert quick.astype(str).equals(normalised.astype(str)), name


def test_ambiguous_column_names_still_fail_with_the_reason(store):
    from scoring.models.predictor import PartitionError, SensorPredictor

    frame = _readings("dev-1", "temperature", np.ones(3)).assign(value=2.0)
    with pytest.raises(PartitionError, match="both match 'Value'"):
        SensorPredictor(store).score(frame)


def test_a_worker_served_by_the_pack_never_imports_scikit_learn(store, tmp_path):
    """Importing scikit-learn and skops costs each worker over a second at start-up."""
    import subprocess
    import sys
    from pathlib import Path

    write_pack(store)
    device, sensor = store.keys()[0]
    _readings(device, sensor, np.linspace(-60, 60, 100)).to_parquet(tmp_path / "part.parquet")
    code = f"""
import sys
import pandas as pd
sys.argv = ["score.py", "--models", {str(store.root)!r}]
from scoring.steps import score
score.init()
out = score.run(pd.read_parquet({str(tmp_path / "part.parquet")!r}))
assert len(out) == 100, len(out)
loaded = sorted(m for m in ("sklearn", "skops", "scipy") if m in sys.modules)
print("loaded:", loaded)
"""
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loaded: []" in result.stdout, result.stdout


def test_opening_a_pack_maps_it_instead_of_copying_its_arrays(store):
    import pyarrow as pa

    path = write_pack(store).path
    before = pa.total_allocated_bytes()
    pack = PackedStore.open(path)
    copied = pa.total_allocated_bytes() - before
    assert len(pack) == 6
    assert copied < path.stat().st_size / 4, f"{copied} bytes copied of a {path.stat().st_size}"


def test_the_pack_command_builds_and_names_bad_folders(store, tmp_path, capsys):
    from batchscore.cli import main

    assert main(["models", "pack", str(store.root)]) == 0
    assert "6 models packed (0 unchanged)" in capsys.readouterr().out
    assert PackedStore.for_store(store) is not None
    assert main(["models", "pack", str(tmp_path / "nothing")]) == 2
    assert "nothing: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["models", "pack", str(tmp_path / "empty")]) == 2
    assert "no manifest.json here" in capsys.readouterr().err


def test_models_verify_finds_a_swapped_a_truncated_and_a_missing_file(store, capsys):
    """With a current pack scoring never reads these files: verify is how to check them."""
    from batchscore.cli import main

    write_pack(store)
    assert main(["models", "verify", str(store.root)]) == 0
    assert "6 model files checked (sha256), 6 pack rows checked, 0 problem(s)" in (
        capsys.readouterr().out
    )
    files = [store.root / store.entry(d, s)["file"] for d, s in store.keys()]
    files[0].write_bytes(files[1].read_bytes())  # swapped
    files[2].write_bytes(files[2].read_bytes()[:100])  # truncated
    files[3].unlink()  # deleted
    assert main(["models", "verify", str(store.root)]) == 1
    out = capsys.readouterr().out
    assert out.count("is corrupt or was replaced") == 2 and "but missing" in out
    assert "3 problem(s)" in out


def test_models_verify_names_a_damaged_pack_row(store, capsys):
    from batchscore.cli import main

    path = write_pack(store).path
    pack = PackedStore.open(path)
    needle = pack.slice("dual_coef", 2).tobytes()
    del pack
    data = bytearray(path.read_bytes())
    data[data.find(needle) + 5] ^= 0x01
    path.write_bytes(bytes(data))
    assert main(["models", "verify", str(store.root)]) == 1
    assert "is damaged (its checksum differs)" in capsys.readouterr().out


def _plain_segment_sum(words: np.ndarray, start: int, end: int) -> int:
    """The row checksum's definition, in Python integers: sum and XOR of the row's words
    (mod 2**64), mixed."""
    row = [int(word) for word in words[start:end]]
    total, xor = sum(row) % 2**64, 0
    for word in row:
        xor ^= word
    return (total * 0x9E3779B97F4A7C15 + xor) % 2**64 if row else 0


@pytest.mark.parametrize("dtype", [np.uint64, np.uint8])
def test_row_sums_are_their_definition_for_rows_together_far_apart_or_empty(dtype):
    from scoring.models.pack import _segment_sums

    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 40, 300)
    lengths[[7, 8, 150]] = 0  # rows without a word
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    top = np.iinfo(dtype).max
    words = rng.integers(0, top, int(offsets[-1]), dtype=dtype, endpoint=True)
    words[:50] = top  # sums that wrap past 2**64 for the 64-bit words
    scattered = np.sort(rng.choice(300, 25, replace=False))
    for rows in (np.arange(300), np.arange(100, 140), np.array([0, 299]), np.array([7, 8]),
                 np.array([3]), np.array([299]), scattered):  # fmt: skip
        expected = [_plain_segment_sum(words, offsets[r], offsets[r + 1]) for r in rows]
        assert _segment_sums(offsets, words, rows).tolist() == expected, rows


def test_checking_some_rows_gives_the_checksums_written_for_them(store):
    pack = PackedStore.open(write_pack(store).path)
    rows = np.arange(len(pack))
    recorded = pack.numbers["checksum"]
    for some in (rows, rows[[0, -1]], rows[[2]], rows[1:3]):
        assert pack.verify(some).all()
        assert (content_checksums(pack._columns, some) == recorded[some]).all()  # noqa: SLF001


def test_pairs_sharing_a_hash_are_told_apart_by_their_names(store, monkeypatch):
    """Every pair hashed alike (a collision made total): each still finds its own row, and a
    pair that is not packed but shares the hash finds none."""
    import scoring.models.pack as pack_module

    monkeypatch.setattr(pack_module, "pair_hash", lambda device, sensor: 7)
    write_pack(store)
    pack = PackedStore.open(store.root / PACK_NAME)
    pairs = store.keys()
    devices = [d for d, _ in pairs] + ["dev-1", "dev-9"]
    sensors = [s for _, s in pairs] + ["humidity", "temperature"]
    rows = pack.rows(devices, sensors)
    assert rows[-2:].tolist() == [-1, -1]
    assert sorted(rows[:-2].tolist()) == list(range(len(pairs)))
    for (device, sensor), row in zip(pairs, rows, strict=False):
        assert pack.strings("device", np.array([row]))[0] == device
        assert pack.strings("sensor", np.array([row]))[0] == sensor


# --- a damaged pack or a manifest that lies: refused in one line, never scored as ok ------------
def test_a_flipped_offset_in_the_pack_is_refused_and_models_load_from_their_files(
    store, capsys, caplog
):
    """An offsets buffer pointing outside the file made workers crash or raise IndexError;
    the pack's structure is validated before any row is served."""
    import subprocess
    import sys

    from batchscore.cli import main
    from scoring.models.predictor import SensorPredictor

    path = write_pack(store).path
    pack = PackedStore.open(path)
    offsets = pack.lists["support_vectors"][0]
    needle = offsets.tobytes()
    del offsets
    del pack
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0  # (dual_coef's offsets are the same numbers: either buffer will do)
    width = len(needle) // (len(store) + 1)
    data[at + 3 * width + width - 2] ^= 0x40  # the fourth offset, far past the values
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert PackedStore.for_store(ModelStore(store.root)) is None
    assert "damaged model pack" in caplog.text
    predictor = SensorPredictor(ModelStore(store.root))
    device, sensor = store.keys()[0]
    out = predictor.score(_readings(device, sensor, np.linspace(-5, 5, 50)))
    assert set(out["Status"]) == {"ok"}  # from the verified skops file
    assert main(["models", "verify", str(store.root)]) == 1
    printed = capsys.readouterr().out
    assert "damaged model pack" in printed and printed.count("\n") == 2
    done = subprocess.run(
        [sys.executable, "-m", "batchscore", "models", "verify", str(store.root)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout


def _rewrite_manifest(store: ModelStore, change) -> None:
    import json

    document = json.loads(store.manifest_path.read_text())
    for entry in document["models"]:
        change(entry)
    store.manifest_path.write_text(json.dumps(document))


@pytest.mark.parametrize("lie", ["a version without a file", "another pair's file"])
def test_a_manifest_entry_that_does_not_name_its_own_file_is_refused(store, capsys, lie):
    from batchscore.cli import main
    from scoring.models.predictor import SensorPredictor

    write_pack(store)
    other = store.entry("dev-1", "pressure")

    def change(entry):
        if (entry["device"], entry["sensor"]) != ("dev-1", "temperature"):
            return
        if lie == "a version without a file":
            entry["version"] = "20990101T000000Z-000000000000"
        else:  # dev-1/temperature scored by dev-1/pressure's model
            entry.update(file=other["file"], sha256=other["sha256"], version=other["version"])

    _rewrite_manifest(store, change)
    assert main(["models", "verify", str(store.root)]) == 1
    printed = capsys.readouterr().out
    assert "Device='dev-1' Sensor='temperature'" in printed
    assert "which is not this pair's file of version" in printed
    predictor = SensorPredictor(ModelStore(store.root), on_model_error="status")
    out = predictor.score(_readings("dev-1", "temperature", np.linspace(-5, 5, 20)))
    assert set(out["Status"]) == {"model_error"} and out["Score"].isna().all()


def test_parked_rows_come_back_with_the_same_values_mapped_from_one_removed_file(tmp_path):
    from scoring.models.kernel import compile_model

    rng = np.random.default_rng(5)
    rows = [pack_row(compile_model(fitted_pipeline(_series(rng, 200)))) for _ in range(4)]
    before = [{name: part.copy() for name, part in row.arrays.items()} for row in rows]
    parked = park_arrays(rows, tmp_path / "task.f8")
    assert parked is not None and all(row.arrays == {} for row in rows)  # pickled small
    arrived = pickle.loads(pickle.dumps(rows))  # as the pool hands them to the parent
    unpark_arrays(arrived, parked)
    assert not (tmp_path / "task.f8").exists()  # removed at once, read into memory first
    for name in before[0]:
        mapped = arrived[0].arrays[name].base
        assert mapped is not None and all(row.arrays[name].base is mapped for row in arrived)
        for row, old in zip(arrived, before, strict=True):
            assert row.arrays[name].dtype == old[name].dtype
            assert row.arrays[name].tobytes() == old[name].tobytes()


def test_rows_that_cannot_be_parked_keep_their_arrays(tmp_path):
    from scoring.models.kernel import compile_model

    rng = np.random.default_rng(6)
    rows = [pack_row(compile_model(fitted_pipeline(_series(rng, 200)))) for _ in range(2)]
    before = [{name: part.copy() for name, part in row.arrays.items()} for row in rows]
    assert park_arrays(rows, tmp_path / "no-such-folder" / "task.f8") is None
    for row, old in zip(rows, before, strict=True):
        assert {name: part.tobytes() for name, part in row.arrays.items()} == {
            name: part.tobytes() for name, part in old.items()
        }
