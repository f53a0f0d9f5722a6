"""One readings file under the product's entry script: shards of whole pairs (the fleet path),
the same answers as the file's pairs one by one; any other entry script keeps one mini-batch per
pair."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.data.extract_folder import finish_extract, write_partitions
from scoring.runner import RunSettings, run_parallel
from scoring.runner.contract import MiniBatchSize
from scoring.runner.inputs import plan_input
from scoring.steps import ENTRY_SCRIPT
from tests.fixtures.toy_data import readings, write_model_store

SCRIPTS = Path(__file__).resolve().parents[2] / "fixtures" / "entry_scripts"
SIZE = MiniBatchSize(files=1)


def _interleaved_file(path: Path, devices: int = 3, sensors=("temp", "vib"), rows=5) -> Path:
    """The pairs' rows interleaved by time, as a stream would write them, unsorted by key."""
    frames = [readings(f"dev-{d:03d}", s, rows) for d in range(devices) for s in sensors]
    frame = pd.concat(frames, ignore_index=True).sort_values("TS", kind="mergesort")
    frame = frame.iloc[::-1].reset_index(drop=True)  # newest first: order within a pair kept?
    frame.to_parquet(path, index=False)
    return path


def test_the_products_entry_script_gets_shards_of_whole_pairs(tmp_path):
    path = _interleaved_file(tmp_path / "hour.parquet")
    plan = plan_input(path, SIZE, entry_script=ENTRY_SCRIPT, shard_rows=12)
    assert plan.kind == "table-file"
    assert [task.keys for task in plan.tasks] == [{"Shard": "00000"}, {"Shard": "00001"}]
    assert [task.items for task in plan.tasks] == [15, 15]  # closes at the first pair >= 12
    pairs = []
    for task in plan.tasks:
        frame = task.frame
        assert (frame["Shard"] == task.keys["Shard"]).all()
        keys = list(zip(frame["Device"], frame["Sensor"], strict=True))
        assert keys == sorted(keys), "pairs in key order"
        for pair, rows in frame.groupby(["Device", "Sensor"], sort=False):
            pairs.append(pair)
            # a pair's rows keep their order in the file (here newest first)
            assert rows["TS"].is_monotonic_decreasing
    assert len(pairs) == len(set(pairs)) == 6, "no pair split across shards"


def test_another_entry_script_keeps_one_mini_batch_per_pair(tmp_path):
    path = _interleaved_file(tmp_path / "hour.parquet")
    plan = plan_input(path, SIZE, entry_script=SCRIPTS / "echo.py", shard_rows=12)
    assert len(plan.tasks) == 6
    assert plan.tasks[0].keys == {"Device": "dev-000", "Sensor": "temp"}


def _score(input_path: Path, store: Path, out: Path) -> tuple[pd.DataFrame, dict]:
    settings = RunSettings(
        input_path=input_path,
        output_dir=out,
        entry_script=ENTRY_SCRIPT,
        program_arguments=["--models", str(store)],
        workers=2,
        show_progress=False,
    )
    summary = run_parallel(settings)
    assert summary.status == "succeeded", summary.failure
    frame = pd.read_parquet(out / "predictions.parquet")
    return frame, json.loads((out / "summary.json").read_text())


def test_a_file_scored_as_shards_answers_as_its_pairs_scored_one_by_one(tmp_path):
    store = write_model_store(tmp_path / "models", devices=3)
    path = _interleaved_file(tmp_path / "hour.parquet", rows=40)
    sharded, summary = _score(path, store, tmp_path / "out")
    assert summary["mini_batches"]["total"] == 1  # 240 rows, one shard of the default size
    assert summary["items"]["returned"] == 240 and summary["items"]["failed"] == 0
    # the reference: the same readings as an extract in the pair layout, a mini-batch per pair
    extract = tmp_path / "extract"
    extract.mkdir()
    by_pair = [
        (
            device,
            sensor,
            rows.sort_values("TS", ignore_index=True).assign(
                MinValue=lambda f: f["Value"], MaxValue=lambda f: f["Value"], Count=1
            ),
        )
        for (device, sensor), rows in pd.read_parquet(path).groupby(["Device", "Sensor"])
    ]
    written = write_partitions(extract, iter(by_pair), "pair", shard_rows=1)
    finish_extract(extract, written, "pair", {"rows": 240, "layout": "pair"})
    alone, reference = _score(extract, store, tmp_path / "out-pairs")
    assert reference["mini_batches"]["total"] == 6
    keys = ["Device", "Sensor", "TS"]
    left = sharded.sort_values(keys, ignore_index=True)
    right = alone.sort_values(keys, ignore_index=True)
    assert (left["Status"] == "ok").all()
    assert left["IsAnomaly"].sum() > 0, "the toy values reach beyond the models' range"
    np.testing.assert_array_equal(left["IsAnomaly"], right["IsAnomaly"])
    np.testing.assert_allclose(left["Score"], right["Score"], rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(left[keys], right[keys])
