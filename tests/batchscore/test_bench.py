"""The benchmark runs end to end at a tiny size, prints its figures and checks correctness."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batchscore import bench
from batchscore.cli import main
from scoring.data.extract_folder import list_partitions, read_partition


def test_tiny_fleet_every_mode_prints_figures_and_agrees_with_scikit_learn(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--sensors", "8", "--rows", "12", "--train-rows", "60", "--workers", "2",
            "--shard-rows", "30", "--sample", "1", "--json", str(out),
            "--modes", ",".join(bench.MODES)]  # fmt: skip
    code = main(argv)
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = json.loads(out.read_text())
    assert results["correctness"]["problems"] == []
    for mode in ("score-shard", "score-file", "score-pair", "process-per-pair"):
        assert results["correctness"][mode]["problems"] == [], mode
        assert results["correctness"][mode]["rows"] == (
            8 * 12 if mode != "process-per-pair" else 12
        )
    assert results["score-shard"]["mini_batches"] == 3, "shards of about 30 rows, whole pairs"
    assert results["score-file"]["mini_batches"] == 1, "one file: shards of whole pairs"
    assert results["score-pair"]["mini_batches"] == 8, "one per pair"
    modes = ("sklearn-loop", "score-shard", "score-file", "score-pair", "process-per-pair",
             "fit-loop", "train-reference", "fit-loop-default", "train")  # fmt: skip
    for mode in modes:
        figures = results[mode]
        assert figures["seconds"] > 0 and figures["cpu_seconds"] > 0, mode
        assert figures["peak_rss_mib"] > 20, f"{mode}: a Python process uses more than 20 MiB"
        assert mode in printed
    assert results["sklearn-loop"]["two_call_seconds"] > 0
    kernel = results["fleet-kernel"]
    assert kernel["rows"] == 8 * 12 and kernel["pairs"] == 8 and kernel["rows_per_second"] > 0
    assert {"score-shard_vs_loop_wall", "score-file_vs_loop_wall", "train_vs_fit_loop_wall",
            "train-reference_vs_fit_loop_wall", "train_vs_fit_loop_default_wall",
            "score-shard_vs_loop_core_seconds"} <= set(results["ratios"])  # fmt: skip
    loop = results["fit-loop"]
    assert loop["fastest_process_seconds"] > loop["seconds"], "the process holds the timed loop"
    assert results["ratios"]["train-reference_vs_fit_loop_whole_process_wall"] == (
        loop["fastest_process_seconds"] / results["train-reference"]["seconds"]
    )
    assert "train-reference vs fit loop whole process wall" in printed
    assert "correctness: labels identical" in printed and "fleet kernel, 1 core" in printed


def test_every_training_run_keeps_its_store_until_the_bench_ends(tmp_path):
    # Removing a run's 5,000 files just before the next run creates 5,000 more made the next
    # run measure the file system's handling of recent deletions (see _run_train).
    work = tmp_path / "work"
    argv = ["bench", "--sensors", "6", "--rows", "12", "--train-rows", "60", "--workers", "2",
            "--modes", "train", "--repeat", "2", "--workdir", str(work)]  # fmt: skip
    assert main(argv) == 0
    for mode in ("train", "train-reference"):
        for number in (0, 1):
            manifest = work / f"out-{mode}-{number}" / "manifest.json"
            assert len(json.loads(manifest.read_text())["models"]) == 6, manifest


def test_the_fleet_is_written_by_the_products_extract_writer_in_both_layouts(tmp_path):
    spec = bench.FleetSpec(sensors=9, rows=12, seed=3, train_rows=20)
    readings, window = bench.fleet_frames(spec)
    assert len(readings) == 9 * 20 and len(window) == 9
    bench.write_extract(window, tmp_path / "shard", "shard", shard_rows=40)
    bench.write_extract(window, tmp_path / "pair", "pair", shard_rows=40)
    pairs = sorted(spec.pairs())
    assert [(p.device, p.sensor) for p in list_partitions(tmp_path / "pair")] == pairs
    shards = list_partitions(tmp_path / "shard")
    assert [p.keys["Shard"] for p in shards] == ["00000", "00001", "00002"]
    rows = pd.concat([read_partition(p.files, p.keys) for p in shards], ignore_index=True)
    assert sorted(set(zip(rows["Device"], rows["Sensor"], strict=True))) == pairs
    assert len(rows) == 9 * 12
    again, _ = bench.fleet_frames(spec)
    pd.testing.assert_frame_equal(readings, again)


def test_many_sensors_per_device_keep_unique_names():
    spec = bench.FleetSpec(sensors=20, rows=10, sensors_per_device=10)
    pairs = spec.pairs()
    assert len(set(pairs)) == 20 and len({device for device, _ in pairs}) == 2


def _predictions(n: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "TS": pd.date_range("2026-01-01", periods=n, freq="min"),
            "Device": "dev-1",
            "Sensor": "temp",
            "Value": rng.normal(0, 1, n),
            "Score": rng.normal(0, 1, n),
            "IsAnomaly": rng.integers(0, 2, n),
            "ModelVersion": "v1",
        }
    )


def test_the_correctness_check_catches_labels_scores_and_missing_rows():
    reference = _predictions()
    shuffled = reference.sample(frac=1, random_state=1)
    assert bench.compare_predictions(shuffled, reference, "x")["problems"] == []
    nudged = reference.assign(Score=reference["Score"] + 5e-10)
    assert bench.compare_predictions(nudged, reference, "x")["problems"] == []

    flipped = reference.copy()
    flipped.loc[3, "IsAnomaly"] = 1 - flipped.loc[3, "IsAnomaly"]
    assert bench.compare_predictions(flipped, reference, "x")["problems"] == ["x: 1 labels differ"]
    drifted = reference.assign(Score=reference["Score"] + 1e-6)
    assert (
        "decision values differ"
        in bench.compare_predictions(drifted, reference, "x")["problems"][0]
    )
    short = bench.compare_predictions(reference.iloc[1:], reference, "x")["problems"]
    assert short == ["x: 9 rows, reference 10"]


def test_training_is_also_compared_with_its_loop_as_a_whole_process():
    results = {
        "fit-loop": {"seconds": 8.0, "cpu_seconds": 8.0, "fastest_process_seconds": 10.0},
        "train-reference": {"seconds": 5.0, "cpu_seconds": 9.0},
        "sklearn-loop": {"seconds": 3.0, "cpu_seconds": 3.0, "fastest_process_seconds": 30.0},
        "score-shard": {"seconds": 1.0, "cpu_seconds": 1.5},
    }
    found = bench.ratios(results)
    assert found["train-reference_vs_fit_loop_wall"] == 8.0 / 5.0
    assert found["train-reference_vs_fit_loop_whole_process_wall"] == 10.0 / 5.0
    # scoring's loop loads every model before its clock: its whole process is no baseline
    assert not any(name.startswith("score-shard") and "whole" in name for name in found)


def test_a_failed_check_makes_the_command_fail(monkeypatch, capsys):
    def broken(ctx):
        return {
            "config": {"sensors": 1, "rows_per_sensor": 1, "rows": 1, "workers": 1},
            "machine": {"cpus": 1, "load_average_at_start": [0.5, 0.5, 0.5]},
            "prepare": {"train_and_pack_seconds": 0.1, "pack_bytes": 1},
            "correctness": {"problems": ["score-shard: 3 labels differ"]},
        }

    monkeypatch.setattr(bench, "bench", broken)
    assert main(["bench", "--sensors", "1", "--rows", "2"]) == 1
    assert "CORRECTNESS FAILED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sensors", "0"], "--sensors 0"),
        (["--rows", "0"], "--rows 0"),
        (["--workers", "0"], "--workers 0"),
        (["--modes", "sklearn-loop,z"], "--modes 'sklearn-loop,z'"),
    ],
)
def test_bad_flags_are_named(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_peak_rss_sees_a_child_allocating_memory():
    code = (
        "import time; block = bytearray(300 * 2**20); "
        "block[::4096] = b'x' * len(block[::4096]); time.sleep(0.5)"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    with bench.PeakRss(process.pid) as sampler:
        process.wait()
    assert sampler.peak > 300 * 2**20


def test_a_child_peak_is_its_own_not_the_forking_parents():
    """ru_maxrss survives fork + exec; the child's figure must not include the parent's size."""
    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    code = "from batchscore import bench; print(bench.maxrss_bytes())"
    measured = bench.run_measured([sys.executable, "-c", code])
    own = int(measured.stdout.strip().splitlines()[-1])
    assert 10 * 2**20 < own < 300 * 2**20, own
    assert measured.peak_rss_bytes < 300 * 2**20, measured.peak_rss_bytes
    del ballast


def test_core_seconds_count_the_workers_of_a_fork_server():
    """The fork server reaps its workers; the parent may never wait for the server."""
    code = (
        "import multiprocessing as mp\n"
        "def burn():\n"
        "    import time; end = time.process_time() + 0.6\n"
        "    while time.process_time() < end: pass\n"
        "if __name__ == '__main__':\n"
        "    ctx = mp.get_context('forkserver')\n"
        "    p = ctx.Process(target=burn); p.start(); p.join()\n"
    )
    script = Path(tempfile.mkdtemp()) / "burn.py"
    script.write_text(code)
    measured = bench.run_measured([sys.executable, str(script)])
    assert measured.cpu_seconds >= 0.5, measured


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PSS is a Linux figure")
def test_pages_two_processes_share_count_once_in_the_peak_and_twice_in_the_rss_sum(tmp_path):
    """The model pack is mapped by every worker: its pages must not count once per worker."""
    shared = tmp_path / "shared.bin"
    shared.write_bytes(b"\1" * (200 * 2**20))
    code = (
        "import mmap, os, sys, time\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)\n"
        "pid = os.fork()\n"
        "total = sum(view[i] for i in range(0, len(view), 4096))\n"
        "time.sleep(1.0)\n"
        "if pid:\n"
        "    os.waitpid(pid, 0)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(shared)])
    with bench.PeakRss(process.pid, slow_every=1) as sampler:
        process.wait()
    assert sampler.peak > 380 * 2**20, sampler.peak
    assert sampler.peak_pss is not None
    assert 190 * 2**20 < sampler.peak_pss < 300 * 2**20, sampler.peak_pss


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux mounts")
def test_the_work_folders_file_system_is_recorded_and_printed():
    """Training writes a file per model into the work folder, and what a file costs depends on
    its file system: the results say which one it was (the innermost mount holding it)."""
    from batchscore.bench.report import format_report
    from batchscore.bench.run import filesystem_of

    assert filesystem_of(Path("/proc/self")) == "proc", "the innermost mount, not the root's"
    results = {
        "config": {"sensors": 1, "rows_per_sensor": 1, "rows": 1, "workers": 1},
        "machine": {"load_average_at_start": [0.5, 0.5, 0.5], "work_filesystem": "tmpfs"},
        "prepare": {"train_and_pack_seconds": 0.1, "pack_bytes": 1},
        "correctness": {"problems": []},
    }
    assert "; work folder on tmpfs" in format_report(results).splitlines()[0]
    del results["machine"]["work_filesystem"]  # results of a bench before it was recorded
    assert "work folder" not in format_report(results)
