"""The training pipeline's train and promote steps on real data: which pairs are retrained,
what each answers, the training summary's statuses and its App Insights event."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from scoring import telemetry
from scoring.models.generations import Generations
from scoring.models.promotion import GateRules
from scoring.steps import promote, train

PAIRS = [("dev-1", "temp"), ("dev-1", "vib"), ("dev-2", "temp")]


def shard(seed: int, rows: int = 200, pairs=PAIRS, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-01-01", periods=rows, freq="5min")
    return pd.concat(
        pd.DataFrame({"TS": ts, "Device": d, "Sensor": s, "Shard": "00000",
                      "Value": rng.normal(10, scale, rows)})
        for d, s in pairs
    ).reset_index(drop=True)  # fmt: skip


def train_into(tmp_path, frame, models, monkeypatch, *extra) -> tuple[pd.DataFrame, object]:
    candidates = tmp_path / "candidates"
    monkeypatch.setattr(
        sys, "argv", ["train.py", "--models", str(models), "--candidates", str(candidates), *extra]
    )
    train.init()
    answer = train.run(frame, SimpleNamespace(partition_key_value={"Shard": "00000"}))
    return answer, candidates


def test_every_input_row_is_answered_and_promote_adds_every_pair(tmp_path, monkeypatch):
    frame = shard(1)
    models = tmp_path / "models"
    answer, candidates = train_into(tmp_path, frame, models, monkeypatch)
    assert len(answer) == len(frame) and set(answer["Status"]) == {"trained"}
    (metrics,) = [p / "metrics.jsonl" for p in (candidates / "parts").iterdir()]
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert {(m["device"], m["sensor"]) for m in lines} == set(PAIRS)
    assert all(m["rows"] == 160 and m["holdout_rows"] == 40 for m in lines), "20% held out"
    assert all(m["current_version"] is None for m in lines)
    summary = promote.promote(candidates, models, GateRules(min_rows=100))
    assert (summary["status"], summary["added"], summary["generation"]) == ("succeeded", 3, 1)


def test_retrain_needed_fits_only_new_failed_and_drifted_pairs(tmp_path, monkeypatch):
    models = tmp_path / "models"
    _, candidates = train_into(tmp_path / "first", shard(1, pairs=PAIRS[:2]), models, monkeypatch)
    promote.promote(candidates, models, GateRules(min_rows=10))
    runs = tmp_path / "runs"
    (runs / "window=20260101T000000Z").mkdir(parents=True)
    latest = runs / "window=20260102T000000Z"
    latest.mkdir()
    (latest / "summary.json").write_text(
        json.dumps({"failed_pairs": [{"device": "dev-1", "sensor": "temp", "reason": "x"}]})
    )
    assert train.needed_pairs(runs) == {("dev-1", "temp")}
    pd.DataFrame({"Device": ["dev-1", "dev-1"], "Sensor": ["vib", "temp"], "Drifted": [True, False]}
                 ).to_parquet(latest / "drift.parquet")  # fmt: skip
    assert train.needed_pairs(runs) == {("dev-1", "temp"), ("dev-1", "vib")}
    (latest / "drift.parquet").unlink()
    answer, _ = train_into(
        tmp_path / "again",
        shard(2),
        models,
        monkeypatch,
        "--retrain",
        "needed",
        "--runs",
        str(runs),
    )
    statuses = answer.groupby(["Device", "Sensor"])["Status"].first().to_dict()
    assert statuses == {
        ("dev-1", "temp"): "trained",  # failed in the latest run
        ("dev-1", "vib"): "not_needed",
        ("dev-2", "temp"): "trained",  # no model yet
    }


def test_summary_status_too_many_rejections_and_what_stays(tmp_path, monkeypatch):
    models = tmp_path / "models"
    _, candidates = train_into(tmp_path / "first", shard(1), models, monkeypatch)
    promote.promote(candidates, models, GateRules(min_rows=10))
    before = (models / "manifest.json").read_bytes()
    _, candidates = train_into(tmp_path / "again", shard(2), models, monkeypatch)
    summary = promote.promote(candidates, models, GateRules(min_rows=1000), max_rejected_percent=50)
    assert summary["status"] == "too_many_rejections" and summary["rejected"] == 3
    assert summary["rejected_percent"] == 100.0 and summary["generation"] is None
    assert all("enough rows" in d["reasons"][0] for d in summary["decisions"])
    assert (models / "manifest.json").read_bytes() == before, "nothing promoted, nothing switched"
    assert [g.generation for g in Generations.local(models).list()] == [1]


def test_the_step_writes_the_summary_and_fails_when_nothing_trained(tmp_path, monkeypatch, capsys):
    candidates = tmp_path / "candidates"
    part = candidates / "parts" / "abc"
    part.mkdir(parents=True)
    (part / "metrics.jsonl").write_text(
        json.dumps({"device": "d", "sensor": "s", "status": "failed", "error": "ValueError: x"})
        + "\n"
    )
    argv = ["--candidates", str(candidates), "--models", str(tmp_path / "m"),
            "--summary-out", str(tmp_path / "out")]  # fmt: skip
    assert promote.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training failed for all 1 pairs" in err[0]
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["status"] == "failed" and written["decisions"][0]["outcome"] == "failed"
    assert promote.main(["--candidates", str(tmp_path), "--models", str(tmp_path)]) == 2


def test_the_training_summary_is_one_app_insights_event():
    exporter = InMemoryLogRecordExporter()
    summary = {"status": "too_many_rejections", "generation": 3, "pairs_trained": 10,
               "promoted": 5, "added": 0, "rejected": 5, "failed": 0, "kept": 2,
               "rejected_percent": 50.0, "failure": None, "decisions": [{"x": 1}]}  # fmt: skip
    assert telemetry.emit_training_summary(summary, exporter=exporter)
    (record,) = exporter.get_finished_logs()
    event = _convert_log_to_envelope(record).data.base_data
    assert event.name == "TrainingRunSummary"
    assert event.properties["status"] == "too_many_rejections"
    assert event.properties["generation"] == "3"
    assert event.measurements["rejected_percent"] == 50.0 and event.measurements["kept"] == 2.0
    assert "decisions" not in event.properties


@pytest.mark.parametrize("share, held", [(0.2, 40), (0.0, 0), (0.999, 199)])
def test_the_holdout_is_the_most_recent_rows_and_never_all(share, held):
    group = shard(3, pairs=PAIRS[:1]).sample(frac=1, random_state=0)
    older, recent = train.split_holdout(group, share)
    assert len(recent) == held and len(older) + len(recent) == 200
    if held:
        assert older["TS"].max() < recent["TS"].min()


def test_the_train_entry_script_finds_its_package_as_the_driver_imports_it(tmp_path):
    """Azure ML's parallel driver imports ``steps/train.py`` as ``steps.train`` (``__package__``
    "steps") with the snapshot folder alone on ``sys.path``: ``scoring`` must come from it."""
    import shutil
    import subprocess
    import textwrap
    from pathlib import Path

    snapshot = tmp_path / "snapshot"  # not named "scoring", like Azure ML's code folder
    scoring_dir = Path(__file__).resolve().parents[3] / "scoring"
    shutil.copytree(scoring_dir, snapshot, ignore=shutil.ignore_patterns("__pycache__"))
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(
            """
            import importlib, importlib.util, sys
            sys.meta_path = [f for f in sys.meta_path if "__editable__" not in repr(f)]
            assert importlib.util.find_spec("scoring") is None
            sys.path.insert(0, sys.argv[1])
            entry = importlib.import_module("steps.train")
            assert entry.__package__ == "steps" and callable(entry.run)
            print(sys.modules["scoring"].__file__)
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-I", str(driver), str(snapshot)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip().splitlines()[-1]).parent == snapshot
