"""``batchscore runs list|show|chart`` on the summaries real publish runs wrote: a local folder,
and the same files in a Blob container on Azurite (the pipeline's layout, under scored/)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient

from batchscore.cli import main
from batchscore.run_chart import runs_figure
from batchscore.run_history import read_folder
from scoring.data import db, scored_parts
from scoring.data.extract_folder import (
    is_marker_partition,
    list_partitions,
    read_index,
    read_partition,
)
from scoring.data.schema import PREDICTION_COLUMNS, predictions_table
from scoring.steps import publish
from scoring.steps.extract import extract_window

PAIRS = [("dev-1", "temp"), ("dev-2", "temp"), ("dev-3", "hum")]  # dev-3 never scores
ENDS = [pd.Timestamp("2026-01-01 10:00"), pd.Timestamp("2026-01-01 11:00")]
EMPTY_END = pd.Timestamp("2026-01-01 12:00")  # no readings: an ingestion outage


def _fake_scoring(extract: Path, scored: Path) -> None:
    """What the score step leaves: a part per pair partition (every other row anomalous),
    and a failure record for dev-3's mini-batch; nothing for an empty window's marker."""
    recorded = read_index(extract)
    for partition in list_partitions(extract):
        if is_marker_partition(partition, recorded):
            continue
        frame = read_partition(partition.files, partition.keys)
        frame = frame.assign(Device=partition.device, Sensor=partition.sensor)
        key = scored_parts.part_key(partition.keys)
        describe = {"keys": partition.keys, "label": f"mini-batch {partition.relative_folder}"}
        if partition.device == "dev-3":
            scored_parts.write_failure(
                scored, key, {**describe, "rows": len(frame)}, "ModelNotFoundError: no model"
            )
            continue
        rows = frame.assign(
            Score=0.5, IsAnomaly=[i % 2 for i in range(len(frame))], ModelVersion="v1", Status="ok"
        )
        scored_parts.write_part(
            scored, key, predictions_table(rows[list(PREDICTION_COLUMNS)]), describe
        )


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Three windows published by the real publish step: two with a failed pair, one empty;
    and a summary file that is not one."""
    work = tmp_path_factory.mktemp("runs")
    engine = db.open_database(f"sqlite:///{work / 'sensors.db'}", create=True)
    db.ensure_table(engine)
    rows = [
        (end - pd.Timedelta(minutes=5 * i), device, sensor, 20.0 + i, 19.0, 22.0, 5)
        for end in ENDS
        for device, sensor in PAIRS
        for i in range(12)
    ]
    db.replace_windows(engine, pd.DataFrame(rows, columns=list(db.SQL_COLUMNS)))
    out = work / "predictions"
    for end in [*ENDS, EMPTY_END]:
        extract, scored = work / f"extract-{end:%H}", work / f"scored-{end:%H}"
        extract_window(engine, end, 60, extract, layout="pair")
        scored.mkdir()
        _fake_scoring(extract, scored)
        publish.publish(scored, extract, out)
    engine.dispose()
    broken = out / "window=20260101T130000Z"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json", encoding="utf-8")
    return out


def runs(*argv: str) -> int:
    return main(["runs", *argv])


# --- a local folder ----------------------------------------------------------------------------
def test_list_shows_every_window_in_order_and_names_the_unreadable_summary(runs_dir, capsys):
    assert runs("list", "--predictions", str(runs_dir)) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("WINDOW END (UTC)")
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["2026-01-01", "10:00:00", "incomplete"],  # dev-3's rows did not come back
        ["2026-01-01", "11:00:00", "incomplete"],
        ["2026-01-01", "12:00:00", "empty_window"],
    ]
    assert lines[1].split()[3:9] == ["36", "24", "12", "3", "1", "1"]  # rows in .. failed batches
    assert lines[-1] == (
        "3 runs (incomplete 2, empty_window 1); 24 anomalies; "
        "1 window(s) without a readable summary"
    )
    assert "window=20260101T130000Z/summary.json: not a run summary" in err


def test_last_keeps_the_latest_windows(runs_dir, capsys):
    assert runs("list", "--predictions", str(runs_dir), "--last", "1") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[2] == "empty_window"
    assert runs("list", "--predictions", str(runs_dir), "--last", "0") == 2
    assert "--last 0: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("window", ["window=20260101T110000Z", "2026-01-01T12:00:00+01:00"])
def test_show_gives_one_run_with_its_failed_pair_and_reason(runs_dir, capsys, window):
    assert runs("show", window, "--predictions", str(runs_dir)) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "run of window=20260101T110000Z  (2026-01-01T10:00:00, 2026-01-01T11:00:00]"
    )
    assert "pairs               3 in the window, 2 scored, 1 failed" in out
    assert "    dev-3 / hum: mini-batch failed: ModelNotFoundError: no model" in out
    assert "failed mini-batches:\n    mini-batch Device=dev-3/Sensor=hum: ModelNotFoundError" in out
    assert "publish_seconds" in out and "model version       v1 (1 distinct)" in out


def test_show_of_an_unknown_window_names_the_known_ones(runs_dir, capsys):
    assert runs("show", "2025-06-01T00:00:00", "--predictions", str(runs_dir)) == 2
    err = capsys.readouterr().err
    assert "no run for window=20250601T000000Z; the latest windows: window=20260101T100000Z" in err
    assert "Traceback" not in err


def test_a_window_without_its_summary_or_with_a_truncated_one_is_named(runs_dir, tmp_path, capsys):
    import shutil

    root = shutil.copytree(runs_dir, tmp_path / "runs")
    (root / "window=20260101T100000Z" / "summary.json").unlink()  # publish did not finish
    summary = root / "window=20260101T110000Z" / "summary.json"
    summary.write_bytes(summary.read_bytes()[:200])  # cut short
    assert runs("list", "--predictions", str(root)) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == (
        "1 run (empty_window 1); 0 anomalies; 3 window(s) without a readable summary"
    )
    assert f"{root / 'window=20260101T100000Z'}: no summary.json (the window's publish" in err
    assert "window=20260101T110000Z/summary.json: not a run summary" in err
    assert runs("show", "2026-01-01T10:00:00", "--predictions", str(root)) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: window=20260101T100000Z: ") and "no summary.json" in line
    assert runs("show", "window=20260101T110000Z", "--predictions", str(root)) == 1
    assert "not a run summary" in capsys.readouterr().err


def test_chart_writes_a_png_with_labelled_axes(runs_dir, tmp_path, capsys):
    target = tmp_path / "charts" / "runs.png"
    assert runs("chart", "--out", str(target), "--predictions", str(runs_dir)) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(3 windows)" in capsys.readouterr().out
    figure = runs_figure(read_folder(runs_dir))
    anomalies, failures = figure.axes
    assert anomalies.get_ylabel() == "anomalies (rows flagged)"
    assert failures.get_ylabel() == "failures, drifted pairs\n(count)"
    assert "pairs drifted from their models" not in [line.get_label() for line in failures.lines], (
        "published without the model store: no drift drawn"
    )
    assert failures.get_xlabel() == "window end (UTC)"
    bars = [p.get_height() for p in failures.patches]
    assert bars == [1, 1, 0], "one failed pair in each window with readings"


def test_chart_needs_a_png_name(runs_dir, tmp_path, capsys):
    assert runs("chart", "--out", str(tmp_path / "runs.jpg"), "--predictions", str(runs_dir)) == 2
    assert "name it *.png" in capsys.readouterr().err


def test_a_folder_without_run_summaries_says_where_they_come_from(tmp_path, capsys):
    (tmp_path / "summary.json").write_text("{}")  # what `batchscore score` writes: not a run's
    assert runs("list", "--predictions", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "no window=<end>/summary.json here" in err and "batchscore publish" in err
    assert runs("list", "--predictions", str(tmp_path / "nope")) == 2
    assert "no such folder" in capsys.readouterr().err


def test_every_action_has_help(capsys):
    for action in ("list", "show", "chart"):
        assert main(["runs", action, "--help"]) == 0
        assert "--predictions DIR" in capsys.readouterr().out


# --- the predictions container on Azurite -----------------------------------------------------
@pytest.fixture(scope="module")
def container(azurite, runs_dir) -> str:
    """The runs folder uploaded as the pipeline lays it out: <container>/scored/window=.../."""
    name = f"predictions-{uuid.uuid4().hex[:8]}"
    client = BlobServiceClient.from_connection_string(azurite).get_container_client(name)
    client.create_container()
    for path in sorted(runs_dir.rglob("*")):
        if path.is_file():
            client.upload_blob(f"scored/{path.relative_to(runs_dir).as_posix()}", path.read_bytes())
    client.upload_blob("scored/summary.json", b"{}")  # not in a window folder: ignored
    client.upload_blob("other/window=20260101T100000Z/summary.json", b"{}")  # another prefix
    return name


def test_list_reads_the_container_like_the_folder(azurite, container, runs_dir, capsys):
    assert runs("list", "--predictions", str(runs_dir)) == 0
    local = capsys.readouterr().out
    assert runs("list", "--connection-string", azurite, "--container", container) == 0
    out, err = capsys.readouterr()
    assert out == local
    assert f"/{container}/scored/window=20260101T130000Z/summary.json: not a run summary" in err
    assert "AccountKey" not in out + err


def test_show_and_chart_read_the_container_too(azurite, container, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    source = ["--connection-string-env", "--container", container]
    assert runs("show", "window=20260101T100000Z", *source) == 0
    out = capsys.readouterr().out
    assert f"/{container}/scored/window=20260101T100000Z/summary.json" in out
    assert "dev-3 / hum: mini-batch failed" in out
    assert runs("chart", "--out", str(tmp_path / "c.png"), *source) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_a_missing_container_or_prefix_is_named(azurite, container, capsys):
    assert runs("list", "--connection-string", azurite, "--container", "nope-404") == 1
    err = capsys.readouterr().err
    assert "nope-404" in err and "was not found" in err and "Traceback" not in err
    assert runs("list", "--connection-string", azurite, "--container", container,
                "--prefix", "elsewhere") == 2  # fmt: skip
    assert f"{container}/elsewhere: no window=<end>/summary.json here" in capsys.readouterr().err


def test_the_summaries_round_trip_unchanged(runs_dir):
    history = read_folder(runs_dir)
    on_disk = json.loads((runs_dir / "window=20260101T100000Z" / "summary.json").read_text())
    assert publish.PublishSummary.from_dict(on_disk) == history.runs[0].summary


def test_show_says_when_drift_was_not_computed(runs_dir, capsys):
    assert runs("show", "window=20260101T110000Z", "--predictions", str(runs_dir)) == 0
    assert "drift               not computed (published without the model store)" in (
        capsys.readouterr().out
    )


def test_show_prints_the_drifted_pairs_and_the_worst(tmp_path, capsys):
    """A window published with the model store: dev-2's model was trained far from its
    window's values, dev-1's around them."""
    from scoring.models.store import ModelStore
    from scoring.models.training import train_models

    engine = db.open_database(f"sqlite:///{tmp_path / 'sensors.db'}", create=True)
    db.ensure_table(engine)
    end = ENDS[0]
    rows = [
        (end - pd.Timedelta(minutes=5 * i), device, sensor, 20.0 + i, 19.0, 22.0, 5)
        for device, sensor in PAIRS[:2]
        for i in range(12)
    ]
    db.replace_windows(engine, pd.DataFrame(rows, columns=list(db.SQL_COLUMNS)))
    extract_window(engine, end, 60, tmp_path / "extract", layout="pair")
    engine.dispose()
    times = pd.date_range(end - pd.Timedelta(days=1), periods=288, freq="5min")
    rng = np.random.default_rng(0)
    training = pd.concat(
        pd.DataFrame(
            {
                "TS": times,
                "Device": device,
                "Sensor": "temp",
                "Value": rng.normal(level, 3.0, len(times)),
            }
        )  # fmt: skip
        for device, level in (("dev-1", 25.5), ("dev-2", 100.0))
    )
    train_models(training, ModelStore(tmp_path / "models"))
    (tmp_path / "scored").mkdir()
    _fake_scoring(tmp_path / "extract", tmp_path / "scored")
    out = tmp_path / "predictions"
    publish.publish(tmp_path / "scored", tmp_path / "extract", out, tmp_path / "models")
    assert runs("show", end.isoformat(), "--predictions", str(out)) == 0
    text = capsys.readouterr().out
    assert "drift               1 of 2 pairs drifted from their models' baselines (psi;" in text
    assert "most drifted pairs (psi, worst first):\n    dev-2 / temp: " in text
    assert "dev-1 / temp: " not in text.split("most drifted pairs")[1]
    failures = runs_figure(read_folder(out)).axes[1]
    (drifted,) = [line for line in failures.lines if line.get_label().startswith("pairs drifted")]
    assert list(drifted.get_ydata()) == [1]


def test_a_chart_of_one_window_keeps_room_around_it_and_whole_counts(runs_dir):
    from batchscore.run_history import History

    history = read_folder(runs_dir)
    lone = History([history.runs[-1]])  # the empty window: every count 0
    figure = runs_figure(lone)
    anomalies, failures = figure.axes
    low, high = failures.get_xlim()  # matplotlib dates: days
    assert (high - low) * 24 >= 6, "a lone bar must not fill the axis"
    for ax in (anomalies, failures):
        ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert ax.get_ylim()[1] >= 1
