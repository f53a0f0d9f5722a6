"""``simulate``: realistic readings, anomalies at a known rate, deterministic output."""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest

from batchscore.cli import main
from batchscore.simulate import (
    SENSOR_TYPES,
    SimulationConfig,
    device_names,
    sensor_types,
    simulate_readings,
)
from scoring.data.files import read_table
from scoring.data.schema import ANOMALY_KIND, DEVICE, INJECTED_ANOMALY, SENSOR, TS, VALUE

SMALL = SimulationConfig(devices=3, sensors=4, hours=6, interval_seconds=60, anomaly_rate=0.02)


@pytest.fixture(scope="module")
def readings() -> pd.DataFrame:
    return simulate_readings(SMALL)


def test_shape_names_and_order(readings):
    assert len(readings) == 3 * 4 * 6 * 60
    assert list(readings.columns) == [TS, DEVICE, SENSOR, VALUE, INJECTED_ANOMALY, ANOMALY_KIND]
    assert sorted(readings[DEVICE].unique()) == ["dev-001", "dev-002", "dev-003"]
    assert sorted(readings[SENSOR].unique()) == ["humidity", "pressure", "temperature", "vibration"]
    assert readings[TS].is_monotonic_increasing
    assert readings[TS].min() == pd.Timestamp("2024-01-01 00:00:00")
    assert readings[TS].diff().max() == pd.Timedelta(minutes=1)
    assert not readings.duplicated([TS, DEVICE, SENSOR]).any()


def test_names_scale_beyond_the_catalogue():
    assert device_names(1200)[0] == "dev-0001"
    names = [name for name, _ in sensor_types(len(SENSOR_TYPES) + 2)]
    assert names[len(SENSOR_TYPES)] == "temperature-2" and len(set(names)) == len(names)


def test_sensor_types_have_their_own_levels(readings):
    normal = readings[readings[INJECTED_ANOMALY] == 0]
    medians = normal.groupby(SENSOR)[VALUE].median()
    assert 1000 < medians["pressure"] < 1030
    assert 15 < medians["temperature"] < 27
    assert 30 < medians["humidity"] < 60
    assert 1 < medians["vibration"] < 3


def test_anomaly_rate_is_close_to_the_requested_rate():
    big = simulate_readings(
        SimulationConfig(devices=10, sensors=4, hours=24, anomaly_rate=0.01, seed=7)
    )
    rate = big[INJECTED_ANOMALY].mean()
    assert 0.006 < rate < 0.015, rate
    assert set(big[ANOMALY_KIND]) == {"none", "spike", "dip", "stuck"}
    assert (big[INJECTED_ANOMALY] == (big[ANOMALY_KIND] != "none")).all()


def test_no_anomalies_when_the_rate_is_zero():
    clean = simulate_readings(SimulationConfig(devices=2, sensors=2, hours=2, anomaly_rate=0))
    assert clean[INJECTED_ANOMALY].sum() == 0


def test_injected_anomalies_lie_outside_each_pairs_normal_range(readings):
    """Every anomalous reading is further from the pair's median than any normal one."""
    for (device, sensor), pair in readings.groupby([DEVICE, SENSOR]):
        normal = pair.loc[pair[INJECTED_ANOMALY] == 0, VALUE]
        odd = pair.loc[pair[INJECTED_ANOMALY] == 1, VALUE]
        if odd.empty:
            continue
        centre = normal.median()
        assert (odd - centre).abs().min() > 1.5 * (normal - centre).abs().max(), (device, sensor)


def test_same_seed_same_output_and_other_seed_differs(readings, tmp_path):
    again = simulate_readings(SMALL)
    pd.testing.assert_frame_equal(readings, again)
    other = simulate_readings(SimulationConfig(**{**SMALL.__dict__, "seed": 43}))
    assert not other[VALUE].equals(readings[VALUE])
    args = ["simulate", "--devices", "2", "--sensors", "2", "--hours", "1", "--seed", "5"]
    assert main([*args, "--output", str(tmp_path / "a.csv")]) == 0
    assert main([*args, "--output", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_devices_readings_do_not_depend_on_the_fleet_size():
    two = simulate_readings(SimulationConfig(devices=2, sensors=2, hours=2))
    five = simulate_readings(SimulationConfig(devices=5, sensors=2, hours=2))
    pd.testing.assert_frame_equal(
        two, five[five[DEVICE].isin(["dev-001", "dev-002"])].reset_index(drop=True)
    )


def test_cli_writes_parquet_with_ground_truth(tmp_path):
    out = tmp_path / "sub" / "readings.parquet"
    code = main(
        ["simulate", "--devices", "2", "--sensors", "3", "--hours", "2", "--interval-seconds",
         "30", "--anomaly-rate", "0.05", "--output", str(out)]
    )  # fmt: skip
    assert code == 0
    back = read_table(out)
    assert len(back) == 2 * 3 * 2 * 120
    assert back[INJECTED_ANOMALY].sum() > 0
    assert back[DEVICE].map(type).eq(str).all()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--devices", "0", "--output", "x.csv"], "--devices"),
        (["--hours", "-1", "--output", "x.csv"], "--hours"),
        (["--anomaly-rate", "0.9", "--output", "x.csv"], "--anomaly-rate"),
        (["--output", "x.json"], "'.json'"),
        (["--start", "yesterday-ish", "--output", "x.csv"], "--start"),
        (["--eventhub", "hub"], "--eventhub-namespace and --eventhub"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path, capsys, monkeypatch, extra, expected):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.iterdir()), "nothing written on bad usage"


def test_eventhub_branch_sends_the_readings(monkeypatch, tmp_path):
    calls = []

    def send_readings(frame, namespace, eventhub):
        calls.append((frame.copy(), namespace, eventhub))
        return len(frame)

    fake = types.ModuleType("batchscore.cloud.eventhub")
    fake.send_readings = send_readings
    monkeypatch.setitem(sys.modules, "batchscore.cloud.eventhub", fake)
    import batchscore.cloud

    monkeypatch.setattr(batchscore.cloud, "eventhub", fake, raising=False)

    code = main(
        ["simulate", "--devices", "2", "--sensors", "2", "--hours", "1",
         "--eventhub-namespace", "ns.servicebus.windows.net", "--eventhub", "sensor-readings"]
    )  # fmt: skip
    assert code == 0
    assert len(calls) == 1
    frame, namespace, hub = calls[0]
    assert (namespace, hub) == ("ns.servicebus.windows.net", "sensor-readings")
    assert list(frame.columns) == [TS, DEVICE, SENSOR, VALUE], "ground truth is not streamed"
    assert len(frame) == 2 * 2 * 60
    assert not list(tmp_path.iterdir())
