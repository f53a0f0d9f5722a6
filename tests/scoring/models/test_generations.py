"""Generations of a model store on a folder: commit, verify, rollback, pins, keep N.
The same rules on Blob storage: tests/batchscore/test_blob_generations.py (Azurite)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scoring.models.generations import GenerationError, Generations, LocalFiles
from scoring.models.store import ModelStore, serialize_model
from tests.fixtures.models import fitted_pipeline, model_files

PAIRS = (("dev-1", "temp"), ("dev-1", "vib"), ("dev-2", "temp"))


def trained(seed: int, pairs=PAIRS):
    """(entries, files) of freshly fitted models of ``pairs``, as the promote step has them."""
    rng = np.random.default_rng(seed)
    entries, files = {}, []
    for device, sensor in pairs:
        model = serialize_model(
            device,
            sensor,
            fitted_pipeline(rng.normal(size=60), nu=0.1, gamma=0.1),
            training_rows=60,
            params={"seed": seed},
        )
        entries[(device, sensor)] = model.entry
        files.append((model.entry["file"], model.data))
    return entries, files


def versions(root) -> dict:
    store = ModelStore(root)
    return {pair: store.entry(*pair)["version"] for pair in store.keys()}


def check_lifecycle(generations: Generations, served) -> None:
    """Commit two generations, roll back, pin, unpin: ``served()`` is what scoring reads."""
    first, first_files = trained(1)
    second, second_files = trained(2)
    assert generations.commit(first, first_files, counts={"added": 3}).generation == 1
    assert generations.commit(second, second_files, counts={"promoted": 3}).generation == 2
    assert generations.current() == 2
    assert served() == {pair: e["version"] for pair, e in second.items()}
    history = generations.history()
    assert [(h["generation"], h["promoted"], h["current"]) for h in history] == [
        (1, 0, False),
        (2, 3, True),
    ]

    generations.pin("dev-1", "vib", to=1)
    expected = {pair: e["version"] for pair, e in second.items()}
    expected[("dev-1", "vib")] = first[("dev-1", "vib")]["version"]
    assert served() == expected

    assert generations.rollback(1).generation == 1
    assert served() == {pair: e["version"] for pair, e in first.items()}
    assert generations.current() == 1
    assert generations.unpin("dev-1", "vib") and not generations.unpin("dev-1", "vib")
    generations.rollback(2)
    assert served() == {pair: e["version"] for pair, e in second.items()}


def test_lifecycle_on_a_folder(tmp_path) -> None:
    check_lifecycle(Generations.local(tmp_path), lambda: versions(tmp_path))
    assert (tmp_path / "models.pack.arrow").is_file(), "a switch rebuilds the pack"


def test_a_changed_file_blocks_the_rollback_and_nothing_switches(tmp_path) -> None:
    generations = Generations.local(tmp_path)
    first, files = trained(1)
    generations.commit(first, files)
    generations.commit(*trained(2))
    before = (tmp_path / "manifest.json").read_bytes()
    victim = tmp_path / first[("dev-2", "temp")]["file"]
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(GenerationError, match="generation 1 .* not intact.*dev-2.*was changed"):
        generations.rollback(1)
    assert (tmp_path / "manifest.json").read_bytes() == before


def test_unknown_generation_names_the_kept_ones(tmp_path) -> None:
    generations = Generations.local(tmp_path)
    generations.commit(*trained(1))
    with pytest.raises(GenerationError, match=r"generation 7 .*kept generations: 1\)"):
        generations.rollback(7)
    with pytest.raises(GenerationError, match="no model for Device='nope'"):
        generations.pin("nope", "temp", to=1)


def test_keep_n_drops_old_generations_and_their_files_but_not_pinned_ones(tmp_path) -> None:
    generations = Generations.local(tmp_path, keep=2)
    first, files = trained(1)
    generations.commit(first, files)
    generations.pin("dev-1", "temp", to=1)
    for seed in (2, 3, 4):
        generations.commit(*trained(seed))
    kept = [g.generation for g in generations.list()]
    assert kept == [1, 3, 4], "the newest 2, and 1 because a pair is pinned to it"
    generations.unpin("dev-1", "temp")
    generations.commit(*trained(5))
    assert [g.generation for g in generations.list()] == [4, 5]
    on_disk = {p.relative_to(tmp_path).as_posix() for p in model_files(tmp_path)}
    named = {e["file"] for g in (4, 5) for e in generations.manifest_of(g).values()}
    assert on_disk == named
    assert not (tmp_path / "generations" / "000001").exists()


def test_a_store_trained_outside_generations_is_adopted_and_keeps_its_files(tmp_path) -> None:
    store = ModelStore(tmp_path)
    rng = np.random.default_rng(0)
    store.save("dev-1", "temp", fitted_pipeline(rng.normal(size=50)), training_rows=50, params={})
    adopted_file = store.entry("dev-1", "temp")["file"]
    generations = Generations.local(tmp_path)
    generations.commit(*trained(1))
    assert [(g.generation, g.source) for g in generations.list()] == [
        (1, "adopted"),
        (2, "training"),
    ]
    # training straight into a generational store must not delete a generation's files
    store = ModelStore(tmp_path)
    store.save("dev-1", "temp", fitted_pipeline(rng.normal(size=50)), training_rows=50, params={})
    assert (tmp_path / adopted_file).is_file()
    generations.rollback(1)
    assert versions(tmp_path)[("dev-1", "temp")] in adopted_file


def test_the_manifest_names_its_generation_and_the_generation_is_immutable(tmp_path) -> None:
    generations = Generations.local(tmp_path)
    generations.commit(*trained(1), summary={"status": "succeeded"})
    header = json.loads((tmp_path / "manifest.json").read_text())
    assert header["generation"] == 1
    frozen = (tmp_path / "generations" / "000001" / "manifest.json").read_bytes()
    generations.commit(*trained(2))
    generations.pin("dev-1", "temp", to=1)
    assert (tmp_path / "generations" / "000001" / "manifest.json").read_bytes() == frozen
    summary = json.loads((tmp_path / "generations" / "000001" / "summary.json").read_text())
    assert summary == {"status": "succeeded", "generation": 1}
    assert LocalFiles(tmp_path).names("generations/000001") == [
        "generations/000001/manifest.json",
        "generations/000001/models.pack.arrow",
        "generations/000001/summary.json",
    ]


def test_a_manifest_copied_from_another_store_is_adopted_not_lost(tmp_path) -> None:
    source = tmp_path / "laptop"
    Generations.local(source).commit(*trained(1))  # its manifest says generation 1
    target = tmp_path / "uploaded"
    target.mkdir()
    for path in model_files(source):
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        (target / path.relative_to(source)).write_bytes(path.read_bytes())
    (target / "manifest.json").write_bytes((source / "manifest.json").read_bytes())
    uploaded = versions(target)
    generations = Generations.local(target)
    generations.commit(*trained(2))
    assert [(g.generation, g.source) for g in generations.list()] == [
        (1, "adopted"),
        (2, "training"),
    ]
    generations.rollback(1)
    assert versions(target) == uploaded
