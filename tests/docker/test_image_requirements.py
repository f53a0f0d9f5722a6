"""The scoring image's requirement set, installed alone in a fresh virtualenv, with Microsoft's
own ``mltable`` reading our extracts and the entry script answering every row it is handed.

A fresh virtualenv gets exactly scoring/requirements-image.txt (the runtime plus the parallel
driver's packages: mltable, azureml-core, azureml-dataset-runtime[fuse]) and the package in the
image's /app layout. The repository's own `batchscore train` (tooling, not in the image) builds a
small model store; tests/fixtures/image_driver.py then runs in the fresh environment: it reads
an extract with ``mltable.load(...).to_pandas_dataframe()``, checks our own reader gives the same
frames, and hands each partition to the entry script as the driver does, both as
``scoring.steps.score`` (the image) and as a top-level file loaded from a code snapshot folder
with another name (how Azure ML loads it). Slow (a fresh install, about a minute), so marked
``slow``, but it runs in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.docker.test_dockerfile import build_app_layout
from tests.fixtures.install import fresh_venv as install_venv

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "scoring" / "requirements-image.txt"
DRIVER = ROOT / "tests" / "fixtures" / "image_driver.py"
TRAINED = [("plant 7.a/é", "temp C", 21.0), ("001", "temperature", 21.0)]


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """python of a fresh virtualenv holding scoring/requirements-image.txt alone."""
    venv = tmp_path_factory.mktemp("image-venv") / "venv"
    install = ["-r", str(REQUIREMENTS)]
    return install_venv(venv, install, "scoring/requirements-image.txt", timeout=1200) / "python"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(3)
    times = pd.date_range("2024-05-01", periods=240, freq="5min")
    rows = [
        {"TS": ts, "Device": d, "Sensor": s, "Value": float(rng.normal(mean, 1.0))}
        for d, s, mean in TRAINED
        for ts in times
    ]
    readings = work / "readings.csv"
    pd.DataFrame(rows).to_csv(readings, index=False)
    _run(
        [sys.executable, "-m", "batchscore", "train", "--input", str(readings),
         "--models", str(work / "models"), "--jobs", "1", "--no-progress"],
        cwd=ROOT, timeout=300,
    )  # fmt: skip
    return work / "models"


@pytest.mark.slow
def test_the_image_set_resolves_with_the_parallel_runtime(fresh_venv):
    done = _run([str(fresh_venv), "-m", "pip", "check"], timeout=120)
    assert "No broken requirements" in done.stdout
    # (pyodbc needs the unixODBC library, which the image gets with msodbcsql18: not here)
    probe = (
        "import mltable, azureml.core, azureml.telemetry, sklearn, skops.io, pandas, numpy, "
        "pyarrow; print(azureml.core.VERSION, pandas.__version__, numpy.__version__, "
        "pyarrow.__version__)"
    )
    versions = _run([str(fresh_venv), "-c", probe], timeout=120).stdout.split()
    # the driver-facing path below runs with exactly these (scoring/requirements-image.txt)
    assert versions == ["1.61.0", "3.1.1", "2.3.2", "23.0.1"]


TELEMETRY_PROBE = """
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
from scoring import telemetry
exporter = InMemoryLogRecordExporter()
assert telemetry.emit_run_summary({"status": "empty_window", "pairs": 0}, exporter=exporter)
(record,) = exporter.get_finished_logs()
built = telemetry.exporter_from_environment({
    telemetry.CONNECTION_STRING_ENV: "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
    "IngestionEndpoint=http://127.0.0.1:9/",
    "DEFAULT_IDENTITY_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
})
print(_convert_log_to_envelope(record).data.base_type, type(built._credential).__name__)
"""


@pytest.mark.slow
def test_the_publish_steps_telemetry_runs_in_the_image_set(fresh_venv, tmp_path):
    app = build_app_layout(tmp_path / "app")
    env = {"PYTHONPATH": str(app), "PATH": "/usr/bin:/bin"}
    done = _run([str(fresh_venv), "-c", TELEMETRY_PROBE], env=env, cwd=tmp_path, timeout=120)
    assert done.stdout.split() == ["EventData", "ManagedIdentityCredential"]


@pytest.mark.slow
@pytest.mark.parametrize("loaded_as", ["package", "snapshot file"])
def test_mltable_reads_our_extract_and_the_entry_script_answers_every_row(
    fresh_venv, store, tmp_path, loaded_as
):
    app = build_app_layout(tmp_path / "app")
    env = {"PYTHONPATH": str(app), "PATH": "/usr/bin:/bin", "SCORING_PROGRESS": "off"}
    entry = "package"
    if loaded_as == "snapshot file":  # Azure ML mounts the code snapshot under another name
        snapshot = tmp_path / "snapshot" / "code"
        shutil.copytree(app / "scoring", snapshot)
        entry = str(snapshot / "steps" / "score.py")
    work = tmp_path / "work"
    work.mkdir()
    driver = _run(
        [str(fresh_venv), str(DRIVER), str(work), str(store), entry],
        env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    result = json.loads(driver.stdout.strip().splitlines()[-1])
    assert result["null_keys"] == 0, "the MLTable gives every row its Device and Sensor"
    assert result["mltable_columns"][-2:] == ["Device", "Sensor"]
    assert result["partitions"] == [
        ["001", "temperature"],
        ["dev-9", "x"],
        ["plant%207%2Ea%2F%C3%A9", "temp%20C"],  # raw: mltable keeps the encoding
    ]
    assert result["same_as_ours"] == 3, "our reader hands run() what mltable hands it"
    assert result["runner_kinds"] == ["frame"] and result["runner_keys"] == result["partitions"]
    answers = {tuple(a["raw"]): a for a in result["answers"]}
    for raw, (device, sensor, _) in zip(
        [("plant%207%2Ea%2F%C3%A9", "temp%20C"), ("001", "temperature")], TRAINED, strict=True
    ):
        answer = answers[raw]
        assert answer["rows_out"] == answer["rows_in"] == 4, "one answer per input row"
        assert answer["pair"] == [[device, sensor]], "keys decoded"
        assert answer["status"] == ["ok", "ok", "invalid_value", "ok"]
        assert answer["anomalies"] == 1
    missing = answers[("dev-9", "x")]  # no model: answered, as a shard answers it
    assert set(missing["status"]) == {"no_model"} and missing["rows_out"] == missing["rows_in"]
    # an empty window reads as one marker row: one partition for the driver, answered without
    # scoring; the local runner leaves it out
    assert result["empty_rows"] == 1 and result["empty_partitions"] == 1
    assert result["empty_answer"] == ["empty_window"] and result["empty_tasks"] == 0
    # shards: the Shard key from the folder, Device and Sensor as plain columns
    assert result["shard_keys"] == ["00000", "00001"]
    assert {"Device", "Sensor", "Shard"} <= set(result["shard_columns"])
    first, second = result["shard_answers"]
    assert first["rows_out"] == first["rows_in"] == 8 and second["rows_out"] == 4
    assert first["status"] == [
        ["001", "invalid_value"], ["001", "ok"], ["dev-9", "no_model"]
    ]  # fmt: skip
    assert second["status"] == [["plant 7.a/é", "invalid_value"], ["plant 7.a/é", "ok"]]
    assert [set(keys) for keys in result["runner_shard_keys"]] == [{"Shard"}, {"Shard"}]
    assert result["runner_shard_rows"] == [8, 4], "the local runner's mini-batch is a shard"


TRAINING_DRIVER = ROOT / "tests" / "fixtures" / "training_driver.py"


@pytest.mark.slow
def test_mltable_reads_the_training_extract_and_the_training_steps_promote_every_pair(
    fresh_venv, tmp_path
):
    """The training pipeline's extract (shards over the training window, as the extract step
    writes it) read by the real mltable, each shard fitted by steps/train.py and promoted."""
    from scoring.data.db import database, replace_windows
    from scoring.steps.extract import extract_window

    rng = np.random.default_rng(5)
    times = pd.date_range("2024-05-01", periods=288, freq="5min")
    pairs = [*[(d, s) for d, s, _ in TRAINED], ("dev-3", "vib")]
    frame = pd.concat(
        pd.DataFrame({"TS": times, "Device": d, "Sensor": s, "Value": rng.normal(5, 1, len(times)),
                      "MinValue": 0.0, "MaxValue": 9.0, "Count": 5})
        for d, s in pairs
    )  # fmt: skip
    url = f"sqlite:///{(tmp_path / 'sensors.db').as_posix()}"
    with database(url, create=True) as engine:
        replace_windows(engine, frame)
        extract_window(
            engine, pd.Timestamp("2024-05-01 23:55"), 1440, tmp_path / "extract", shard_rows=300
        )
    app = build_app_layout(tmp_path / "app")
    env = {"PYTHONPATH": str(app), "PATH": "/usr/bin:/bin", "SCORING_PROGRESS": "off"}
    args = [str(tmp_path / "extract"), str(tmp_path / "candidates"), str(tmp_path / "models")]
    done = _run([str(fresh_venv), str(TRAINING_DRIVER), *args], env=env, cwd=tmp_path, timeout=600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["null_keys"] == 0, "every row keeps its Device, Sensor and Shard"
    assert result["rows"] == result["answered"] == len(frame), "one answer per input row"
    assert result["exit"] == 0 and result["generation"] == 1
    assert result["pairs"] == sorted([d, s] for d, s in pairs), "every pair got a model"
