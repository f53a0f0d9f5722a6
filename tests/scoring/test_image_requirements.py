"""The scoring image's requirements install on their own and the entry script runs on them.

A fresh virtualenv (as the image has: nothing but scoring/requirements.txt) gets the
package in the image's /app layout; the repository's own `batchscore train` (tooling, not in
the image) builds a small model store, and a tiny driver calls the entry script's
init()/run()/shutdown() on one partition, both as `scoring.steps.score` (the image) and as a
top-level file loaded from a code snapshot folder with another name (how Azure ML loads it).
Slow (a fresh install, about a minute or two), so marked `slow`, but it runs in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.scoring.test_dockerfile import build_app_layout

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "scoring" / "requirements.txt"
PAIRS = [("dev-001", "temperature"), ("dev-001", "vibration")]
PREDICTION_COLUMNS = ["TS", "Device", "Sensor", "Value", "Score", "IsAnomaly", "ModelVersion"]

DRIVER = textwrap.dedent(
    """
    import importlib.util, json, sys
    from types import SimpleNamespace

    mode, store, partition_csv = sys.argv[1:4]
    if mode == "package":
        from scoring.steps import score
    else:  # Azure ML: the entry script loaded by path from a snapshot folder
        spec = importlib.util.spec_from_file_location("entry", mode)
        score = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(score)

    import pandas as pd

    sys.argv = ["score.py", "--models", store, "--some-azureml-flag", "x"]
    score.init()
    batch = pd.read_csv(partition_csv, parse_dates=["TS"])
    context = SimpleNamespace(
        partition_key_value={"Device": "dev-001", "Sensor": "temperature"}, minibatch_index=0
    )
    out = score.run(batch.drop(columns=["Device", "Sensor"]), context)
    score.shutdown()
    print(json.dumps({
        "rows": len(out),
        "columns": list(out.columns),
        "devices": sorted(set(out["Device"])),
        "anomalous_values": sorted(float(v) for v in out.loc[out["IsAnomaly"] == 1, "Value"]),
        "scikit_learn": __import__("sklearn").__version__,
    }))
    """
)


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("image-venv") / "venv"
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], timeout=600)
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        timeout=900,
    )
    print(f"\nfresh install of scoring/requirements.txt: {time.monotonic() - started:.0f} s")
    return python


def _readings(path: Path) -> None:
    rng = np.random.default_rng(3)
    times = pd.date_range("2024-05-01", periods=240, freq="5min")
    rows = [
        {"TS": ts, "Device": d, "Sensor": s, "Value": float(rng.normal(20.0, 1.0))}
        for d, s in PAIRS
        for ts in times
    ]
    pd.DataFrame(rows).to_csv(path, index=False)


@pytest.mark.slow
def test_requirements_are_consistent(fresh_venv):
    done = _run([str(fresh_venv), "-m", "pip", "check"], timeout=120)
    assert "No broken requirements" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("loaded_as", ["package", "snapshot file"])
def test_entry_script_scores_a_partition_in_the_fresh_environment(fresh_venv, tmp_path, loaded_as):
    app = build_app_layout(tmp_path / "app")
    env = {"PYTHONPATH": str(app), "PATH": "/usr/bin:/bin", "SCORING_PROGRESS": "off"}
    readings = tmp_path / "readings.csv"
    _readings(readings)
    store = tmp_path / "models"
    _run(
        [sys.executable, "-m", "batchscore", "train", "--input", str(readings),
         "--models", str(store), "--jobs", "1", "--no-progress"],
        cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert (store / "manifest.json").is_file()

    partition = tmp_path / "partition.csv"
    normal = [20.0, 20.5, 19.5, 21.0]
    pd.DataFrame(
        {
            "TS": pd.date_range("2024-05-02", periods=5, freq="5min"),
            "Device": "dev-001",
            "Sensor": "temperature",
            "Value": [*normal, 95.0],
        }
    ).to_csv(partition, index=False)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    if loaded_as == "package":
        mode = "package"
    else:  # no PYTHONPATH: Azure ML mounts the code snapshot under another folder name
        snapshot = tmp_path / "snapshot"
        shutil.copytree(app / "scoring", snapshot / "code")
        mode = str(snapshot / "code" / "steps" / "score.py")
        env = {k: v for k, v in env.items() if k != "PYTHONPATH"}

    done = _run(
        [str(fresh_venv), str(driver), mode, str(store), str(partition)],
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] == 5
    assert result["columns"] == PREDICTION_COLUMNS
    assert result["devices"] == ["dev-001"]
    assert result["anomalous_values"] == [95.0], result
