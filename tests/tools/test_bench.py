"""The benchmark runs end to end at a tiny size, prints its figures and checks correctness."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from batchscore import bench
from batchscore.cli import main
from scoring.data.extract_folder import list_partitions, read_partition


def test_tiny_fleet_all_modes_print_figures_and_agree(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--sensors",
            "6",
            "--rows",
            "240",
            "--sample-a",
            "1",
            "--workers",
            "2",
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = json.loads(out.read_text())
    assert results["correctness"]["problems"] == []
    assert {"c_vs_b", "a_vs_b"} <= set(results["correctness"])
    assert results["correctness"]["c_vs_b"]["rows"] == 6 * 240
    for mode in ("a", "b", "c"):
        figures = results[mode]
        assert figures["seconds"] > 0 and figures["rows_per_second"] > 0, mode
        assert figures["peak_rss_mib"] > 20, f"{mode}: a Python process uses more than 20 MiB"
        assert f"({mode})" in printed
    kernel = results["kernel"]
    assert kernel["compiled"] == kernel["models"] == 6
    assert kernel["rows"] == 6 * 240 and kernel["rows_per_second"] > 0
    assert {"c_vs_a", "c_vs_b", "kernel_vs_sklearn"} <= set(results["ratios"])
    assert "correctness: labels identical" in printed
    assert "fast kernel, 1 core" in printed and "ms/model" in printed


def test_the_fleet_is_an_extract_folder_of_s_by_r_rows(tmp_path):
    spec = bench.FleetSpec(sensors=9, rows=50, seed=3)
    readings = bench.write_fleet(spec, tmp_path / "extract")
    partitions = list_partitions(tmp_path / "extract")
    assert [(p.device, p.sensor) for p in partitions] == sorted(spec.pairs())
    assert len(set(spec.pairs())) == 9
    first = read_partition(partitions[0].files, partitions[0].keys)
    assert len(first) == 50 and {"TS", "Device", "Sensor", "Value"} <= set(first.columns)
    assert len(readings) == 9 * 50
    again = bench.write_fleet(spec, tmp_path / "again")
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


def test_a_failed_check_makes_the_command_fail(monkeypatch, capsys):
    def broken(ctx):
        return {
            "config": {"sensors": 1, "rows_per_sensor": 1, "rows": 1, "workers": 1},
            "machine": {"cpus": 1},
            "correctness": {"problems": ["(c) vs (b): 3 labels differ"]},
        }

    monkeypatch.setattr(bench, "bench", broken)
    assert main(["bench", "--sensors", "1", "--rows", "2"]) == 1
    assert "CORRECTNESS FAILED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sensors", "0"], "--sensors 0"),
        (["--rows", "1"], "--rows 1"),
        (["--workers", "0"], "--workers 0"),
        (["--modes", "b,z"], "--modes 'b,z'"),
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
    code = "from batchscore import bench; print(bench._maxrss_bytes())"
    stdout, peak, _ = bench.run_measured([sys.executable, "-c", code])
    own = int(stdout.strip().splitlines()[-1])
    assert 10 * 2**20 < own < 300 * 2**20, own
    assert peak < 300 * 2**20, peak
    del ballast
