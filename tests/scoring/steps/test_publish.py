"""The publish step: the score step's Parquet parts into one file per window, checked against
the extract; nothing lost silently, an empty window visible, a re-run replacing."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from scoring.data import db, scored_parts
from scoring.data.schema import PREDICTION_COLUMNS, PREDICTION_SCHEMA
from scoring.errors import UsageError
from scoring.models.store import ModelStore
from scoring.runner import RunSettings, run_parallel
from scoring.steps import ENTRY_SCRIPT, publish
from scoring.steps.extract import extract_window
from tests.fixtures.models import default_pipeline

PAIRS = [("dev 1.a", "temp"), ("dev-2", "temp"), ("dev-3", "hum")]  # dev-3 has no model
END = pd.Timestamp("2024-01-01 01:00:00")


@pytest.fixture(params=["pair", "shard"])
def layout(request) -> str:
    return request.param


@pytest.fixture
def extract(tmp_path, layout):
    engine = db.open_database(f"sqlite:///{tmp_path / 'sensors.db'}", create=True)
    db.ensure_table(engine)
    rows = [
        (END - pd.Timedelta(minutes=5 * i), device, sensor, 20.0 + i % 3, 19.0, 22.0, 5)
        for device, sensor in PAIRS
        for i in range(12)
    ]
    db.replace_windows(engine, pd.DataFrame(rows[1:], columns=list(db.SQL_COLUMNS)))
    unscorable = dict(zip(db.SQL_COLUMNS, rows[0], strict=True), Value=float("inf"))
    with engine.begin() as connection:  # SQLite keeps an infinite value: an unscorable reading
        connection.execute(db.sensor_readings.insert(), [unscorable])
    folder = tmp_path / "extract"
    extract_window(engine, END, 60, folder, layout=layout, shard_rows=20)
    engine.dispose()
    return folder


@pytest.fixture
def store(tmp_path):
    store = ModelStore(tmp_path / "models")
    rng = np.random.default_rng(0)
    for device, sensor in PAIRS[:2]:  # each its own readings: each its own model and version
        X = rng.normal(21.0, 1.0, size=(200, 1))
        pipeline = default_pipeline(nu=0.05)
        store.save(device, sensor, pipeline.fit(X), training_rows=200, params={},
                   write_manifest=False)  # fmt: skip
    store.write_manifest()
    return store.root


def _score(extract, store, tmp_path, *, append: bool):
    """The product's entry script under the local runner, writing parts as on Azure ML."""
    scored = tmp_path / "scored"
    return scored, run_parallel(
        RunSettings(
            input_path=extract,
            output_dir=tmp_path / "run",
            entry_script=ENTRY_SCRIPT,
            program_arguments=["--models", str(store), "--predictions-dir", str(scored)],
            workers=1,
            max_retries=0,
            append_rows=append,
            show_progress=False,
        )
    )


def test_parts_become_the_windows_predictions_with_failures_reported(
    extract, store, tmp_path, layout
):
    scored, run = _score(extract, store, tmp_path, append=True)
    summary = publish.publish(scored, extract, tmp_path / "out")
    folder = tmp_path / "out" / "window=20240101T010000Z"
    table = pq.ParquetFile(folder / "predictions.parquet").read()
    assert table.schema.names == list(PREDICTION_COLUMNS)
    assert table.schema.remove_metadata().equals(PREDICTION_SCHEMA)
    published = table.to_pandas()
    # the same rows the runner collected from run()'s returns: one implementation, two outputs
    collected = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    pd.testing.assert_frame_equal(
        published.reset_index(drop=True),
        collected.sort_values(["Device", "Sensor", "TS"]).reset_index(drop=True),
        check_dtype=False,
    )
    assert summary.status == "succeeded"
    on_disk = json.loads((folder / "summary.json").read_text())
    assert on_disk["window_end"] == "2024-01-01T01:00:00"
    # a pair without a model: its rows say so in either layout, and every row came back
    assert (summary.rows_extracted, summary.rows_published, summary.rows_missing) == (36, 36, 0)
    assert summary.rows_by_status == {"invalid_value": 1, "no_model": 12, "ok": 23}
    assert summary.failed_mini_batches == [] and summary.parts_ignored == []
    assert {"dev 1.a", "dev-2"} <= set(published["Device"]), "real names, decoded"


def test_a_rerun_of_the_window_replaces_it(extract, store, tmp_path, layout):
    scored, _ = _score(extract, store, tmp_path, append=False)
    publish.publish(scored, extract, tmp_path / "out")
    publish.publish(scored, extract, tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == ["predictions.parquet", "summary.json"]
    rows = pq.read_metadata(next((tmp_path / "out").rglob("*.parquet"))).num_rows
    assert rows == 36


def test_no_prediction_for_a_window_with_readings_fails_loudly(extract, tmp_path, capsys):
    empty_scored = tmp_path / "scored"
    empty_scored.mkdir()
    code = publish.main(
        ["--scored", str(empty_scored), "--extract", str(extract), "--out", str(tmp_path / "o")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "36 rows and no prediction came back" in err and "Traceback" not in err
    assert not list((tmp_path / "o").rglob("predictions.parquet")), "nothing published"


def test_an_empty_window_is_published_as_such_with_the_declared_columns(tmp_path):
    engine = db.open_database(f"sqlite:///{tmp_path / 'e.db'}", create=True)
    db.ensure_table(engine)
    extract_window(engine, END, 60, tmp_path / "extract")
    engine.dispose()
    (tmp_path / "scored").mkdir()
    summary = publish.publish(tmp_path / "scored", tmp_path / "extract", tmp_path / "out")
    assert summary.status == "empty_window" and summary.rows_published == 0
    table = pq.ParquetFile(next((tmp_path / "out").rglob("predictions.parquet"))).read()
    assert table.num_rows == 0 and table.schema.names == list(PREDICTION_COLUMNS)


def test_a_part_without_the_contracts_columns_is_refused(extract, tmp_path):
    scored = tmp_path / "scored"
    scored.mkdir()
    pd.DataFrame({"TS": [END], "Score": ["high"]}).to_parquet(scored / "part-x.parquet")
    with pytest.raises(Exception, match="part-x.parquet: columns"):
        publish.publish(scored, extract, tmp_path / "out")


def test_window_folder_is_utc_basic_iso():
    assert publish.window_folder("2025-03-01T10:00:00Z") == "window=20250301T100000Z"
    assert publish.window_folder("2025-03-01T11:00:00+01:00") == "window=20250301T100000Z"
    assert publish.window_folder("2025-03-01 10:00") == "window=20250301T100000Z"
    with pytest.raises(UsageError, match="window end"):
        publish.window_folder("yesterday-ish")


# --- pairs, model version, timings: what the run reports about itself -------------------------
def test_the_summary_counts_pairs_names_each_failed_one_and_times_the_run(
    extract, store, tmp_path, layout
):
    scored, _ = _score(extract, store, tmp_path, append=False)
    summary = publish.publish(scored, extract, tmp_path / "out")
    assert (summary.pairs, summary.pairs_scored, summary.pairs_failed) == (3, 2, 1)
    (failed,) = summary.failed_pairs
    assert (failed["device"], failed["sensor"]) == ("dev-3", "hum")
    assert failed["reason"] == "no row scored (no_model: 12)"  # in either layout
    assert summary.model_versions == 2
    models = ModelStore(store)
    assert summary.model_version == max(models.entry(*pair)["version"] for pair in models.keys())
    timings = summary.timings
    assert set(timings) == {"published_at", "publish_seconds", "scoring_seconds", "latency_seconds"}
    assert 0 <= timings["publish_seconds"] < 60 and timings["scoring_seconds"] >= 0
    assert timings["latency_seconds"] > 365 * 86400, "the 2024 window ended long ago"
    on_disk = json.loads((tmp_path / "out" / summary.window / "summary.json").read_text())
    assert publish.PublishSummary.from_dict(on_disk) == summary


def test_a_failed_shard_fails_every_pair_it_held_with_its_reason(tmp_path):
    engine = db.open_database(f"sqlite:///{tmp_path / 's.db'}", create=True)
    db.ensure_table(engine)
    rows = [(END, device, sensor, 20.0, 19.0, 22.0, 5) for device, sensor in PAIRS]
    db.replace_windows(engine, pd.DataFrame(rows, columns=list(db.SQL_COLUMNS)))
    extract_window(engine, END, 60, tmp_path / "extract", layout="shard", shard_rows=100)
    engine.dispose()
    scored = tmp_path / "scored"
    scored_parts.write_failure(
        scored, "k", {"keys": {"Shard": "00000"}, "rows": 3}, "MemoryError: worker killed"
    )
    summary = publish.publish(scored, tmp_path / "extract", tmp_path / "out")
    assert summary.status == "failed" and summary.pairs_failed == summary.pairs == 3
    assert {(p["device"], p["sensor"]) for p in summary.failed_pairs} == set(PAIRS)
    assert {p["reason"] for p in summary.failed_pairs} == {
        "mini-batch failed: MemoryError: worker killed"
    }


def test_an_empty_window_has_no_pairs_and_no_model_version(tmp_path):
    engine = db.open_database(f"sqlite:///{tmp_path / 'e.db'}", create=True)
    db.ensure_table(engine)
    extract_window(engine, END, 60, tmp_path / "extract", layout="pair")
    engine.dispose()
    (tmp_path / "scored").mkdir()
    summary = publish.publish(tmp_path / "scored", tmp_path / "extract", tmp_path / "out")
    assert (summary.status, summary.pairs, summary.pairs_failed) == ("empty_window", 0, 0)
    assert summary.model_version is None and summary.timings["scoring_seconds"] is None


def test_an_empty_window_takes_the_pipelines_path_to_publish(tmp_path, store, layout, monkeypatch):
    """extract -> score -> publish for a window without readings, as the pipeline runs it: the
    extract holds one marker partition, so Azure ML's parallel step gets one mini-batch (never
    none, an outcome its docs do not give); the entry script answers its row without scoring
    or writing a prediction, and publish reports the empty window. The local runner leaves the
    marker out (no work), and says empty window as before."""
    from scoring.data.extract_folder import iter_partitions
    from scoring.steps import score

    engine = db.open_database(f"sqlite:///{tmp_path / 'e.db'}", create=True)
    db.ensure_table(engine)
    extract_window(engine, END, 60, tmp_path / "extract", layout=layout)
    engine.dispose()
    scored = tmp_path / "scored"
    argv = ["score.py", "--models", str(store), "--predictions-dir", str(scored)]
    monkeypatch.setattr("sys.argv", argv)
    score.init()
    try:
        (partition,) = list(iter_partitions(tmp_path / "extract"))  # what mltable hands over
        keys, frame = partition
        context = SimpleNamespace(partition_key_value=keys, minibatch_index=0)
        answer = score.run(frame, context)
    finally:
        score.shutdown()
        score._predictor = None
    assert len(answer) == len(frame) == 1, "every row answered: the driver counts no failure"
    assert answer["Status"].tolist() == ["empty_window"]
    summary = publish.publish(scored, tmp_path / "extract", tmp_path / "out")
    assert (summary.status, summary.rows_extracted, summary.rows_published) == (
        "empty_window",
        0,
        0,
    )
    assert (summary.pairs, summary.pairs_failed, summary.failed_mini_batches) == (0, 0, [])
    _, run = _score(tmp_path / "extract", store, tmp_path, append=False)
    assert run.status == "empty_window" and not run.records


def test_mini_batches_spread_over_nodes_and_retried_elsewhere_publish_once(
    extract, store, tmp_path, monkeypatch
):
    """scoringInstanceCount > 1: each node runs init() and a share of the mini-batches against
    the same mounted output, and a mini-batch whose node was lost is run again on another one.
    Parts are named by the mini-batch, never by the node or attempt, so publish counts every
    row once."""
    from scoring.data.extract_folder import iter_partitions
    from scoring.steps import score

    scored = tmp_path / "scored"
    argv = ["score.py", "--models", str(store), "--predictions-dir", str(scored)]
    monkeypatch.setattr("sys.argv", argv)
    partitions = list(iter_partitions(extract))
    # node 0 takes the even mini-batches, node 1 the odd ones, then retries mini-batch 0
    plan = {
        0: [i for i in range(len(partitions)) if i % 2 == 0],
        1: [i for i in range(len(partitions)) if i % 2 == 1] + [0],
    }
    for indexes in plan.values():
        score.init()  # a node's own process
        try:
            for index in indexes:
                keys, frame = partitions[index]
                context = SimpleNamespace(partition_key_value=keys, minibatch_index=index)
                try:
                    score.run(frame, context)
                except Exception:  # a pair without a model fails its mini-batch (recorded)
                    pass
        finally:
            score.shutdown()
            score._predictor = None
    summary = publish.publish(scored, extract, tmp_path / "out")
    published = pq.read_table(next((tmp_path / "out").rglob("predictions.parquet"))).to_pandas()
    assert not published.duplicated(["Device", "Sensor", "TS"]).any()
    assert summary.rows_published + summary.rows_missing == summary.rows_extracted
    assert summary.rows_published == len(published) > 0


def test_an_older_summary_reads_back_with_defaults_for_the_new_fields():
    old = {"window": "window=20240101T010000Z", "window_start": "a", "window_end": "b",
           "status": "succeeded", "rows_extracted": 5, "someday": "ignored"}  # fmt: skip
    summary = publish.PublishSummary.from_dict(old)
    assert summary.rows_extracted == 5 and summary.pairs == 0 and summary.timings == {}


# --- the step sends its summary to Application Insights (an in-memory exporter here) ----------
@pytest.fixture
def sent(monkeypatch):
    """The events the publish step hands to its exporter."""
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

    from scoring import telemetry

    exporter = InMemoryLogRecordExporter()
    monkeypatch.setattr(telemetry, "exporter_from_environment", lambda environ=None: exporter)

    def events() -> list[tuple[dict, dict]]:
        out = []
        for record in exporter.get_finished_logs():
            attributes = dict(record.log_record.attributes)
            measurements = json.loads(attributes.pop("microsoft.custom_measurements"))
            out.append((attributes, measurements))
        return out

    return events


def _publish_main(scored, extract, out) -> int:
    return publish.main(["--scored", str(scored), "--extract", str(extract), "--out", str(out)])


def test_a_run_with_a_failed_pair_reports_it_to_application_insights(
    extract, store, tmp_path, sent
):
    scored, _ = _score(extract, store, tmp_path, append=False)
    assert _publish_main(scored, extract, tmp_path / "out") == 0
    ((properties, measurements),) = sent()
    assert properties["microsoft.custom_event.name"] == "ScoringRunSummary"
    assert properties["status"] == "succeeded"
    assert properties["window"] == "window=20240101T010000Z"
    assert (measurements["pairs"], measurements["pairs_failed"]) == (3, 1)
    assert json.loads(properties["failed_pairs_sample"])[0]["device"] == "dev-3"
    assert measurements["rows_extracted"] == 36 and "latency_seconds" in measurements


def test_an_empty_window_is_reported_as_such(tmp_path, sent):
    engine = db.open_database(f"sqlite:///{tmp_path / 'e.db'}", create=True)
    db.ensure_table(engine)
    extract_window(engine, END, 60, tmp_path / "extract")
    engine.dispose()
    (tmp_path / "scored").mkdir()
    assert _publish_main(tmp_path / "scored", tmp_path / "extract", tmp_path / "out") == 0
    ((properties, measurements),) = sent()
    assert properties["status"] == "empty_window"
    assert measurements["rows_extracted"] == 0 and measurements["pairs"] == 0


def test_a_failed_publish_still_reports_before_it_fails(extract, tmp_path, sent):
    (tmp_path / "scored").mkdir()
    assert _publish_main(tmp_path / "scored", extract, tmp_path / "out") == 1
    ((properties, measurements),) = sent()
    assert properties["status"] == "failed" and "no prediction came back" in properties["failure"]
    assert measurements["pairs_failed"] == measurements["pairs"] == 3


def test_telemetry_that_fails_never_fails_the_publish(extract, store, tmp_path, monkeypatch):
    from scoring import telemetry

    def unreachable(environ=None):
        raise OSError("no route to the ingestion endpoint")

    monkeypatch.setattr(telemetry, "exporter_from_environment", unreachable)
    scored, _ = _score(extract, store, tmp_path, append=False)
    assert _publish_main(scored, extract, tmp_path / "out") == 0
    assert (tmp_path / "out" / "window=20240101T010000Z" / "predictions.parquet").is_file()


# --- drift: each pair's window against its model's baseline ------------------------------------
@pytest.fixture
def trained_store(tmp_path):
    """Models trained as ``batchscore train`` does (with baselines) on a day of windows:
    dev 1.a around the window's values, dev-2 far above them; dev-3 has none."""
    from scoring.models.training import train_models

    rng = np.random.default_rng(2)
    times = pd.date_range(END - pd.Timedelta(days=1), periods=288, freq="5min")
    frames = [
        pd.DataFrame(
            {
                "TS": times,
                "Device": device,
                "Sensor": sensor,
                "Value": rng.normal(level, 1.0, len(times)),
            }
        )  # fmt: skip
        for (device, sensor), level in zip(PAIRS[:2], (21.0, 40.0), strict=False)
    ]
    store = ModelStore(tmp_path / "trained")
    train_models(pd.concat(frames, ignore_index=True), store)
    return store.root


def test_publish_writes_each_pairs_drift_and_counts_the_drifted(
    extract, trained_store, tmp_path, layout, sent
):
    scored, _ = _score(extract, trained_store, tmp_path, append=False)
    argv = ["--scored", str(scored), "--extract", str(extract), "--out", str(tmp_path / "out")]
    assert publish.main([*argv, "--models", str(trained_store)]) == 0
    folder = tmp_path / "out" / "window=20240101T010000Z"
    drift = pq.read_table(folder / "drift.parquet").to_pandas().set_index(["Device", "Sensor"])
    assert {"Statistic", "Drifted", "Rows"} <= set(drift.columns)
    assert bool(drift.loc[("dev-2", "temp"), "Drifted"]) is True
    assert bool(drift.loc[("dev 1.a", "temp"), "Drifted"]) is False
    assert drift.loc[("dev 1.a", "temp"), "Rows"] == 11, "the unscorable value is not counted"
    summary = json.loads((folder / "summary.json").read_text())
    unknown = 1  # dev-3's rows came back (no_model) in either layout: its drift is unknown
    assert pd.isna(drift.loc[("dev-3", "hum"), "Drifted"])
    assert "no baseline" in drift.loc[("dev-3", "hum"), "Note"]
    assert (summary["drift_statistic"], summary["drift_pairs"], summary["drifted_pairs"]) == (
        "psi", 2, 1
    )  # fmt: skip
    assert summary["drift_unknown_pairs"] == unknown
    assert [(p["device"], p["sensor"]) for p in summary["drift_worst"]] == [("dev-2", "temp")]
    from scoring.steps.drift import drifted_pairs

    assert drifted_pairs(folder) == [("dev-2", "temp")], "what retraining starts from"
    ((properties, measurements),) = sent()
    assert (measurements["drift_pairs"], measurements["drifted_pairs"]) == (2, 1)
    assert json.loads(properties["drift_worst_sample"])[0]["device"] == "dev-2"


def test_without_models_no_drift_is_claimed(extract, store, tmp_path):
    scored, _ = _score(extract, store, tmp_path, append=False)
    summary = publish.publish(scored, extract, tmp_path / "out")
    assert summary.drifted_pairs is None and summary.drift_statistic is None
    assert not list((tmp_path / "out").rglob("drift.parquet"))


def test_models_saved_without_baselines_have_drift_unknown(extract, store, tmp_path):
    scored, _ = _score(extract, store, tmp_path, append=False)
    summary = publish.publish(scored, extract, tmp_path / "out", store)
    assert summary.drift_pairs == 0 and summary.drifted_pairs == 0
    assert summary.drift_unknown_pairs >= 2


def test_an_unreadable_model_store_does_not_fail_the_publish(extract, store, tmp_path):
    scored, _ = _score(extract, store, tmp_path, append=False)
    (store / "manifest.json").write_text("{not json")
    summary = publish.publish(scored, extract, tmp_path / "out", store)
    assert summary.status == "succeeded" and summary.drifted_pairs is None
    assert "unreadable manifest" in summary.drift_failure


def test_a_models_folder_that_is_not_one_is_refused(extract, tmp_path, capsys):
    argv = ["--scored", str(tmp_path), "--extract", str(extract), "--out", str(tmp_path / "o")]
    assert publish.main([*argv, "--models", str(tmp_path / "nowhere")]) == 2
    assert "--models" in capsys.readouterr().err


# --- only this run's rows, all of them, or not a success ---------------------------------------
def _parts(scored):
    return sorted(scored.glob("part-*.parquet"))


def test_a_deleted_part_is_an_incomplete_window_exit_1(extract, store, tmp_path, capsys, layout):
    scored, _ = _score(extract, store, tmp_path, append=False)
    lost = pq.read_metadata(_parts(scored)[0]).num_rows
    _parts(scored)[0].unlink()
    assert _publish_main(scored, extract, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"publish of window=20240101T010000Z incomplete: {lost} of 36 extracted rows" in err
    on_disk = json.loads(next((tmp_path / "out").rglob("summary.json")).read_text())
    assert (on_disk["status"], on_disk["rows_missing"]) == ("incomplete", lost)
    assert on_disk["pairs_failed"] >= 1
    rows = pq.read_metadata(next((tmp_path / "out").rglob("predictions.parquet"))).num_rows
    assert rows == 36 - lost, "the rows that came back are published, nothing else lost"


def test_a_part_cut_short_names_its_pair(extract, store, tmp_path, layout):
    scored, _ = _score(extract, store, tmp_path, append=False)
    part = next(p for p in _parts(scored) if "dev-2" in pq.read_table(p)["Device"].to_pylist())
    table = pq.read_table(part)
    keep = [d != "dev-2" or i % 2 == 1 for i, d in enumerate(table["Device"].to_pylist())]
    pq.write_table(table.filter(keep), part)  # dev-2 loses 6 of its 12 rows
    summary = publish.publish(scored, extract, tmp_path / "out")
    assert (summary.status, summary.rows_missing, summary.pairs_failed_rows) == (
        "incomplete", 6, 1
    )  # fmt: skip
    reasons = {(p["device"], p["sensor"]): p["reason"] for p in summary.failed_pairs}
    assert reasons[("dev-2", "temp")] == "6 of 12 rows came back"
    assert summary.pairs_failed == 2  # and dev-3 without a model


def test_parts_of_other_runs_are_left_aside_and_named(extract, store, tmp_path, layout):
    import os

    scored, _ = _score(extract, store, tmp_path, append=False)
    (first, *_), extracted_at = _parts(scored), (extract / "_extract.json").stat().st_mtime
    older = scored / "part-older-run.parquet"  # an earlier run's part, still in the folder
    older.write_bytes(first.read_bytes())
    os.utime(older, (extracted_at - 60, extracted_at - 60))
    other = pq.read_table(first)  # another window's rows, written just now
    shifted = other.set_column(
        0, "TS", pc.add(other["TS"], pa.scalar(86_400_000_000, pa.duration("us")))
    )
    pq.write_table(shifted.cast(PREDICTION_SCHEMA), scored / "part-other-window.parquet")
    summary = publish.publish(scored, extract, tmp_path / "out")
    assert summary.status == "succeeded" and summary.rows_published == 36
    assert summary.duplicates_dropped == 0
    ignored = {entry["part"]: entry["reason"] for entry in summary.parts_ignored}
    assert ignored["part-older-run.parquet"] == (
        "written before this run's extract (a part of an earlier run)"
    )
    assert "outside this run's window" in ignored["part-other-window.parquet"]


def test_an_empty_window_exits_3_from_the_command_line_and_0_as_the_azure_step(tmp_path):
    from batchscore.cli import main

    engine = db.open_database(f"sqlite:///{tmp_path / 'e.db'}", create=True)
    db.ensure_table(engine)
    extract_window(engine, END, 60, tmp_path / "extract")
    engine.dispose()
    (tmp_path / "scored").mkdir()
    argv = ["--scored", str(tmp_path / "scored"), "--extract", str(tmp_path / "extract")]
    assert main(["publish", *argv, "--out", str(tmp_path / "a")]) == 3
    assert publish.main([*argv, "--out", str(tmp_path / "b")]) == 0
