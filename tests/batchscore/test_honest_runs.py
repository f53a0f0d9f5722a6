"""Honest answers of ``batchscore score``: the same answer for a readings file and for its
extract, no traceback for a pair without a model, and never "succeeded" for rows that did
not come back (or came back twice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.fixtures.toy_data import readings, write_extract, write_model_store

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "tests" / "fixtures" / "entry_scripts"


def _batchscore(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "batchscore", *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SCORING_PROGRESS": "off"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_store_missing_pairs_gives_the_same_answer_for_a_file_and_an_extract(tmp_path):
    """Pairs without a model come back ``no_model`` from a readings file as from an extract:
    every row answered, no retries, no traceback, exit 0 (every row came back)."""
    models = write_model_store(tmp_path / "models", devices=1, sensors=("temp",))
    frame = pd.concat(
        [readings(f"dev-{d:03d}", s, 4) for d in range(3) for s in ("temp", "vib")],
        ignore_index=True,
    )
    frame.to_csv(tmp_path / "readings.csv", index=False)
    extract = write_extract(tmp_path / "extract", devices=3, rows=4)
    answers = {}
    for name, source in (("file", tmp_path / "readings.csv"), ("extract", extract)):
        out = tmp_path / f"out-{name}"
        done = _batchscore(
            *("score", "--input", str(source), "--models", str(models)),
            *("--output", str(out), "--workers", "1"),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "ModelNotFoundError" not in done.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "succeeded"
        assert summary["mini_batches"]["retried"] == 0
        rows = pd.read_parquet(out / "predictions.parquet")
        answers[name] = rows.groupby(["Device", "Sensor"])["Status"].agg(set).to_dict()
    assert answers["file"] == answers["extract"]
    assert answers["file"][("dev-000", "temp")] == {"ok"}
    assert answers["file"][("dev-002", "vib")] == {"no_model"}


def test_rows_answered_twice_fail_their_mini_batch_and_are_not_published(tmp_path):
    extract = write_extract(tmp_path / "extract", devices=2, sensors=("temp",), rows=6)
    out = tmp_path / "out"
    done = _batchscore(
        *("score", "--input", str(extract), "--output", str(out), "--workers", "1"),
        *("--entry-script", str(SCRIPTS / "twice.py"), "--max-retries", "0"),
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    assert "scoring run INCOMPLETE: 6 of 12 items did not come back" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    (failed,) = summary["failed_mini_batches"]
    assert failed["reasons"] == [
        "returned 12 rows for 6 in: each input row must be answered exactly once"
    ]
    rows = pd.read_parquet(out / "predictions.parquet")
    assert len(rows) == 6 and set(rows["Device"]) == {"dev-001"}


def test_a_missing_package_is_named_as_pip_knows_it(tmp_path):
    """The demo's lean virtualenv has no azure-storage-blob: the line names that package, not
    the namespace 'azure' nobody can install. (A process of its own, where the package is
    made missing.)"""
    from batchscore.cli import distribution_of

    (tmp_path / "models").mkdir()
    argv = ["models", "upload", "--models", str(tmp_path / "models"), "--container", "m",
            "--account-url", "https://x.blob.core.windows.net"]  # fmt: skip
    script = (
        "import sys; sys.modules['azure.storage.blob'] = None\n"
        "from batchscore.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: batchscore models needs the package 'azure-storage-blob' ")
    assert distribution_of("azure.ai.ml.entities") == "azure-ai-ml"
    assert distribution_of("sklearn.svm") == "scikit-learn"


# An Azurite-shaped connection string (its published development key) to a port nobody serves.
CLOSED_PORT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1"
)


def test_an_unreachable_storage_endpoint_is_named_within_seconds(tmp_path):
    """It was silent for 84 to 88 s (the SDK's 20 s connects and 15 s + 3**n backoffs)."""
    import time

    from batchscore.cloud.blob_sync import container_client

    client = container_client("x", connection_string=CLOSED_PORT_STORAGE)
    retry = client._config.retry_policy
    assert (retry.total_retries, retry.initial_backoff) == (2, 1)
    started = time.monotonic()
    done = _batchscore(
        "runs", "list", "--connection-string", CLOSED_PORT_STORAGE, "--container", "x",
        cwd=tmp_path,
    )  # fmt: skip
    waited = time.monotonic() - started
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: cannot list http://127.0.0.1:9/devstoreaccount1/x/scored: ")
    assert "the storage endpoint is unreachable" in line
    assert waited < 40, f"{waited:.0f} s before the answer"


def test_an_unknown_event_hubs_host_is_one_line(tmp_path):
    done = _batchscore(
        "simulate", "--devices", "1", "--sensors", "1", "--hours", "0.1",
        "--eventhub-namespace", "nope.invalid", "--eventhub", "readings",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [errors[-1]] and done.stderr.rstrip().endswith(errors[-1])
    assert errors[0].startswith("error: cannot send to Event Hub nope.invalid/readings: ")


def test_a_failing_mini_batch_is_one_log_line_and_its_traceback_only_on_debug(tmp_path):
    extract = write_extract(tmp_path / "extract", devices=2, sensors=("temp",), rows=3)
    argv = [
        *("score", "--input", str(extract), "--workers", "1", "--max-retries", "0"),
        *("--entry-script", str(SCRIPTS / "raise_for_partition.py")),
    ]
    plain = _batchscore(*argv, "--output", "a", "--", "--fail-device", "dev-000", cwd=tmp_path)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr + plain.stdout, plain.stderr
    assert "ValueError: no model for device dev-000 (at raise_for_partition.py:" in plain.stderr
    debug = _batchscore(
        *argv, "--output", "b", "--log-level", "DEBUG", "--", "--fail-device", "dev-000",
        cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback (most recent call last)" in debug.stderr
