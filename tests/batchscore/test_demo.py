"""``demo``: every stage end to end on a small fleet, checked against the injected truth."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from batchscore.cli import main
from batchscore.demo import DemoReport, evaluate, window_truth
from scoring.data.extract_folder import read_summary
from scoring.data.schema import (
    ANOMALY_KIND,
    DEVICE,
    INJECTED_ANOMALY,
    IS_ANOMALY,
    PREDICTION_COLUMNS,
    SENSOR,
    TS,
    VALUE,
)

DEVICES, SENSORS, HOURS, SCORE_HOURS, WINDOW = 6, 4, 24, 8, 5

# Why recall must reach RECALL_FLOOR (see batchscore.simulate): every injected event moves
# the 5-minute windows it touches by at least 1.6 H (one spiking reading of >= 8 H in a
# five-reading average) and usually far more (stuck runs put whole windows 5-8 H away,
# 2-3 spiking readings 3-8 H), while normal windows stay within about +-H of the level.
# So nearly every truly anomalous window lies outside its pair's normal range. Misses
# come from a single anomalous reading at the far end of the daily cycle and from models
# trained on history that holds anomalies too (anomaly rate ~ nu). Measured recall of this
# configuration on seeds 0-5: 0.73-0.91. A floor of 0.6 leaves room for model changes and
# still fails when anomalies are lost, mis-keyed or mapped to the wrong window (recall
# then drops towards the model's false-positive rate, a few percent).
RECALL_FLOOR = 0.6
# Flags must carry information: at least 5x the precision of flagging windows at random.
PRECISION_OVER_BASE_RATE = 5.0


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    code = main(
        ["demo", "--workdir", str(workdir), "--devices", str(DEVICES), "--sensors",
         str(SENSORS), "--hours", str(HOURS), "--score-hours", str(SCORE_HOURS),
         "--workers", "2"]
    )  # fmt: skip
    assert code == 0
    return workdir


@pytest.mark.slow
def test_every_window_of_the_scoring_period_is_scored_once(demo_dir):
    predictions = pd.read_parquet(demo_dir / "predictions" / "predictions.parquet")
    expected_rows = DEVICES * SENSORS * SCORE_HOURS * 60 // WINDOW
    assert len(predictions) == expected_rows == read_summary(demo_dir / "extract")["rows"]
    assert set(PREDICTION_COLUMNS) <= set(predictions.columns)
    assert not predictions.duplicated([TS, DEVICE, SENSOR]).any()
    assert set(predictions[IS_ANOMALY].unique()) <= {0, 1}
    assert predictions[DEVICE].map(type).eq(str).all()
    end = predictions[TS].max()
    assert predictions[TS].min() == end - pd.Timedelta(hours=SCORE_HOURS) + pd.Timedelta(
        minutes=WINDOW
    )


@pytest.mark.slow
def test_report_recall_and_precision_against_the_injected_truth(demo_dir):
    report = json.loads((demo_dir / "report.json").read_text())
    rows = DEVICES * SENSORS * SCORE_HOURS * 60 // WINDOW
    assert report["rows_scored"] == report["rows_in"] == rows
    assert report["truly_anomalous_windows"] > 10, "too few anomalies to judge recall"
    assert report["true_positives"] + report["false_negatives"] == report["truly_anomalous_windows"]
    assert report["recall"] >= RECALL_FLOOR, report
    base_rate = report["truly_anomalous_windows"] / rows
    assert report["precision"] >= PRECISION_OVER_BASE_RATE * base_rate, report
    stages = {"simulate", "aggregate", "train", "extract", "score", "report", "total"}
    assert stages <= set(report["stage_seconds"])
    chart = demo_dir / "anomalies.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000


@pytest.mark.slow
def test_the_report_explains_its_chart_and_its_false_positives(demo_dir, capsys):
    report = json.loads((demo_dir / "report.json").read_text())
    predictions = pd.read_parquet(demo_dir / "predictions" / "predictions.parquet")
    flags = predictions[predictions[IS_ANOMALY] == 1].groupby([DEVICE, SENSOR]).size()
    most = flags.sort_values(ascending=False).index[0]
    charted = [(p["device"], p["sensor"]) for p in report["most_flagged_pairs"]]
    assert tuple(most) in charted, "the chart shows the pair flagged most"
    assert charted[0] == tuple(most) or flags[charted[0]] == flags[most]
    assert sum(p["false"] for p in report["most_flagged_pairs"]) <= report["false_positives"]
    assert "Red x" in report["chart_caption"] and "grey band" in report["chart_caption"]
    places = report["false_positives_by_place"]
    assert sum(places.values()) == report["false_positives"]
    explanation = report["false_positive_explanation"]
    assert f"{report['false_positives']} normal windows were flagged" in explanation
    assert "retrain" in explanation and "--gamma" in explanation


@pytest.mark.slow
def test_report_matches_an_independent_recount(demo_dir):
    """Recount from the raw file with plain pandas: a reading at exactly a window end
    belongs to that window; windows are (end - 5 min, end]."""
    raw = pd.read_parquet(demo_dir / "readings.parquet")
    predictions = pd.read_parquet(demo_dir / "predictions" / "predictions.parquet")
    ends = raw[TS].dt.ceil(f"{WINDOW}min")
    anomalous = set(
        zip(ends[raw[INJECTED_ANOMALY] == 1], raw.loc[raw[INJECTED_ANOMALY] == 1, DEVICE],
            raw.loc[raw[INJECTED_ANOMALY] == 1, SENSOR], strict=True)
    )  # fmt: skip
    keys = list(zip(predictions[TS], predictions[DEVICE], predictions[SENSOR], strict=True))
    actual = pd.Series([key in anomalous for key in keys])
    flagged = predictions[IS_ANOMALY].eq(1).reset_index(drop=True)
    report = json.loads((demo_dir / "report.json").read_text())
    assert report["truly_anomalous_windows"] == int(actual.sum())
    assert report["true_positives"] == int((actual & flagged).sum())
    assert report["anomalies_found"] == int(flagged.sum())


def test_window_truth_marks_windows_with_any_injected_reading():
    raw = pd.DataFrame(
        {
            TS: pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-01 10:04"]),
            DEVICE: ["d", "d", "d"],
            SENSOR: ["s", "s", "s"],
            VALUE: [1.0, 50.0, 1.0],
            INJECTED_ANOMALY: [1, 0, 1],
            ANOMALY_KIND: ["spike", "none", "stuck"],
        }
    )
    truth = window_truth(raw, 5).set_index(TS)
    assert truth.loc[pd.Timestamp("2024-01-01 10:00"), "TrueAnomaly"] == 1
    assert truth.loc[pd.Timestamp("2024-01-01 10:05"), "TrueAnomaly"] == 1
    assert truth.loc[pd.Timestamp("2024-01-01 10:05"), ANOMALY_KIND] == "stuck"

    predictions = pd.DataFrame(
        {
            TS: pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:05", "2024-01-01 10:10"]),
            DEVICE: ["d"] * 3,
            SENSOR: ["s"] * 3,
            VALUE: [1.0, 17.0, 1.0],
            IS_ANOMALY: [0, 1, 1],
        }
    )
    report = DemoReport()
    evaluate(predictions, window_truth(raw, 5), report)
    assert (report.true_positives, report.false_positives, report.false_negatives) == (1, 1, 1)
    assert report.precision == 0.5 and report.recall == 0.5
    assert report.recall_by_kind == {"stuck": 1.0, "spike": 0.0}


def test_bad_demo_options_exit_2(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--hours", "4", "--score-hours", "4"]) == 2
    assert "--score-hours" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["demo", "--workdir", str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_the_demo_publishes_its_window_like_the_pipeline_and_runs_lists_it(demo_dir, capsys):
    (summary,) = (demo_dir / "runs").glob("window=*/summary.json")
    values = json.loads(summary.read_text())
    rows = DEVICES * SENSORS * SCORE_HOURS * 60 // WINDOW
    assert (values["status"], values["rows_published"]) == ("succeeded", rows)
    assert values["pairs"] == DEVICES * SENSORS and values["pairs_failed"] == 0
    capsys.readouterr()
    assert main(["runs", "list", "--predictions", str(demo_dir / "runs")]) == 0
    assert "1 run (succeeded 1)" in capsys.readouterr().out
    # the simulated days end by today's midnight: the latency is of this run, not of 2024
    assert 0 < values["timings"]["latency_seconds"] < 2 * 86400


@pytest.mark.slow
def test_the_demos_closing_hint_runs_in_the_shell_that_ran_it(demo_dir):
    """`make demo` runs .venv-demo/bin/batchscore, on no PATH: the hint names a command that
    runs as printed (here: this interpreter with -m batchscore)."""
    import shlex
    import subprocess
    import sys

    report = json.loads((demo_dir / "report.json").read_text())
    line = next(line for line in DemoReport(**report).text().splitlines() if "run history" in line)
    command = shlex.split(line.split("run history", 1)[1])
    assert command[:3] == [sys.executable, "-m", "batchscore"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert done.returncode == 0 and "1 run (succeeded 1)" in done.stdout, done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--devices", "0"], "--devices must be at least 1"),
        (["--anomaly-rate", "0.9"], "--anomaly-rate must be between 0 and 0.5"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_the_simulated_fleet_is_checked_before_any_stage(tmp_path, capsys, flags, message):
    assert main(["demo", "--workdir", str(tmp_path / "demo"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "demo").exists()


def test_the_chart_shows_a_clean_pair_keeps_its_legend_off_the_data_and_explains_flags(
    tmp_path,
):
    """Flags inside the training band are explained in the panel (its title, and the pink
    stretches the pair's own model flags); the legend sits above every panel."""
    import matplotlib.pyplot as plt
    import numpy as np

    from batchscore.demo import TRUE_ANOMALY, chart_figure, clean_pair, most_flagged
    from scoring.models.store import ModelStore
    from tests.fixtures.models import fitted_pipeline

    rng = np.random.default_rng(1)
    two_states = np.r_[rng.normal(10, 0.2, 150), rng.normal(14, 0.2, 150)]
    store = ModelStore(tmp_path / "models")
    store.save("dev-a", "flow", fitted_pipeline(two_states, nu=0.02, gamma=0.1),
               training_rows=300, params={})  # fmt: skip
    training = pd.DataFrame({DEVICE: "dev-a", SENSOR: "flow", VALUE: two_states})
    training = pd.concat(
        [training, pd.DataFrame({DEVICE: "dev-b", SENSOR: "flow", VALUE: rng.normal(5, 1, 300)})]
    )
    times = pd.date_range("2024-01-02", periods=24, freq="5min")
    joined = pd.concat(
        [
            pd.DataFrame(
                {
                    TS: times,
                    DEVICE: "dev-a",
                    SENSOR: "flow",
                    VALUE: [10.0] * 20 + [12.0] * 4,
                    IS_ANOMALY: [0] * 20 + [1] * 4,
                    TRUE_ANOMALY: 0,
                }
            ),  # fmt: skip
            pd.DataFrame(
                {
                    TS: times,
                    DEVICE: "dev-b",
                    SENSOR: "flow",
                    VALUE: 5.0,
                    IS_ANOMALY: 0,
                    TRUE_ANOMALY: 0,
                }
            ),  # fmt: skip
        ],
        ignore_index=True,
    )
    report = DemoReport(scoring_window=["2024-01-02T00:00:00", "2024-01-02T02:00:00"])
    report.most_flagged_pairs = most_flagged(joined, 1)
    report.clean_pair = clean_pair(joined, report.most_flagged_pairs)
    assert (report.clean_pair["device"], report.clean_pair["flagged"]) == ("dev-b", 0)
    fig = chart_figure(joined, training, report, store.root)
    try:
        fig.canvas.draw()
        worst, clean = fig.axes
        assert "4 flag(s) inside the grey band" in worst.get_title(loc="left")
        assert clean.get_title(loc="left").startswith("a clean pair, for comparison: dev-b")
        pink = [p for p in worst.patches if p.get_facecolor()[:3] == (1.0, 228 / 255, 225 / 255)]
        assert pink, "the stretches the model flags are drawn"
        (legend,) = fig.legends
        box = legend.get_window_extent()
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent()), "the legend covers a panel"
        assert "clean pair" in report.chart_caption and "pink" in report.chart_caption
    finally:
        plt.close(fig)
