"""The model lifecycle on one machine, through the command line: train (the training
pipeline's steps), score, train again on later data, history, rollback to the first
generation, score again with the first generation's model versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batchscore.cli import main
from scoring.data.db import database, replace_windows

DEVICES, SENSORS = ("dev-1", "dev-2"), ("temp", "vib")


def _readings(start: str, hours: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=hours * 12, freq="5min")
    frames = []
    for device in DEVICES:
        for sensor in SENSORS:
            value = rng.normal(20.0 + shift, 1.0, len(ts))
            frames.append(
                pd.DataFrame(
                    {"TS": ts, "Device": device, "Sensor": sensor, "Value": value,
                     "MinValue": value - 1, "MaxValue": value + 1, "Count": 5}
                )
            )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _load(db_url: str, frame: pd.DataFrame) -> None:
    with database(db_url, create=True) as engine:
        replace_windows(engine, frame)


def _score(tmp: Path, db_url: str, models: Path, end: str, name: str) -> pd.DataFrame:
    extract, out = tmp / f"extract-{name}", tmp / f"scored-{name}"
    assert main(["extract", "--db", db_url, "--end", end, "--output", str(extract)]) == 0
    code = main(
        ["score", "--input", str(extract), "--models", str(models), "--output", str(out),
         "--workers", "1"]
    )  # fmt: skip
    assert code == 0
    return pd.read_parquet(out / "predictions.parquet")


def _history(models: Path, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["models", "history", "--models", str(models), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_train_score_retrain_rollback_score(tmp_path, capsys):
    db_url = f"sqlite:///{(tmp_path / 'sensors.db').as_posix()}"
    models = tmp_path / "models"
    common = ["--db", db_url, "--models", str(models), "--lookback-days", "2", "--min-rows", "50"]
    _load(db_url, _readings("2026-01-01", 48, 0.0, seed=1))
    assert main(["retrain", *common, "--end", "2026-01-03T00:00:00"]) == 0
    first = _history(models, capsys)
    assert [(g["generation"], g["added"], g["current"]) for g in first] == [(1, 4, True)]
    first_versions = {
        (e["device"], e["sensor"]): e["version"]
        for e in json.loads((models / "manifest.json").read_text())["models"]
    }
    scored = _score(tmp_path, db_url, models, "2026-01-03T00:00:00", "1")
    assert set(scored["ModelVersion"]) == set(first_versions.values())

    # Later data, slightly shifted: every candidate stays within the flag-rate bound.
    _load(db_url, _readings("2026-01-03", 48, 0.2, seed=2))
    assert main(["retrain", *common, "--end", "2026-01-05T00:00:00",
                 "--max-flag-rate-delta-percent", "100"]) == 0  # fmt: skip
    second = _history(models, capsys)
    assert [(g["generation"], g["promoted"], g["current"]) for g in second] == [
        (1, 0, False),
        (2, 4, True),
    ]
    scored = _score(tmp_path, db_url, models, "2026-01-05T00:00:00", "2")
    assert not set(scored["ModelVersion"]) & set(first_versions.values())

    capsys.readouterr()
    assert main(["models", "history", "--models", str(models)]) == 0
    table = capsys.readouterr().out
    assert "generation" in table.splitlines()[0] and "*" in table.splitlines()[2]

    assert main(["models", "rollback", "--models", str(models), "--to", "1"]) == 0
    assert [g["current"] for g in _history(models, capsys)] == [True, False]
    scored = _score(tmp_path, db_url, models, "2026-01-05T00:00:00", "3")
    assert set(scored["ModelVersion"]) == set(first_versions.values())
    assert (scored["Status"] == "ok").all()
