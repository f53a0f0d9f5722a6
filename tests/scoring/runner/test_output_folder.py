"""The output folder across runs: one run at a time, dead runs' leftovers cleared, the last
good predictions kept through a Ctrl-C, a folder that cannot be written refused in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from batchscore.cli import main
from scoring.runner import output_folder
from tests.fixtures.toy_data import write_extract

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = Path(__file__).resolve().parents[2] / "fixtures" / "entry_scripts"


@pytest.fixture()
def extract(tmp_path) -> Path:
    return write_extract(tmp_path / "in", devices=3, rows=4)


def _score(extract: Path, out: Path, script: str = "echo.py", *args: str) -> int:
    return main(
        ["score", "--input", str(extract), "--output", str(out), "--workers", "1"]
        + ["--entry-script", str(SCRIPTS / script), "--", *args]
    )


def test_a_second_run_on_a_folder_in_use_is_refused_in_one_line(extract, tmp_path, capsys):
    out = tmp_path / "out"
    assert _score(extract, out) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    capsys.readouterr()
    with output_folder.hold(out, "summary.json"):  # a live run holds it (this process)
        assert _score(extract, out, "echo.py", "--scale", "9") == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --output {out}: another run (pid {os.getpid()}) is writing there; wait for "
        "it to finish or choose another folder\n"
    )
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_a_dead_runs_lock_and_temporary_files_are_taken_over_and_cleared(extract, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / output_folder.LOCK_FILE).write_text("4194303\n")  # its run died: nobody holds it
    leftovers = [
        ".predictions.spool.0123456789ab.tmp",  # a spool of this version
        ".summary.json.ba9876543210.tmp",  # a half-written summary
        ".predictions-k2j3h4g5.spool",  # a spool of the version before (mkstemp)
    ]
    for name in leftovers:
        (out / name).write_bytes(b"partial")
    (out / "notes.txt").write_text("not ours: stays")
    assert _score(extract, out) == 0
    assert sorted(path.name for path in out.iterdir()) == [
        "notes.txt",
        "predictions.parquet",
        "summary.json",
    ]
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert notes[0] == (
        "took over the output folder from pid 4194303, a run that ended without releasing it"
    )
    assert notes[1] == (
        "removed 3 temporary file(s) of a run that did not finish: " + ", ".join(leftovers)
    )


@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")],
    ids=["SIGINT", "SIGTERM"],
)
def test_an_interrupted_run_keeps_the_last_good_predictions_and_summary_says_so(
    extract, tmp_path, signum, code, name
):
    """Ctrl-C and SIGTERM alike: one line, 130 or 143, the lock released, the summary saying
    interrupted (not the previous run's success), the last good predictions kept."""
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    assert _score(extract, out) == 0
    published = (out / "predictions.parquet").read_bytes()
    started_at = json.loads((out / "summary.json").read_text())["started_at"]
    command = [sys.executable, "-m", "batchscore", "score", "--input", str(extract)]
    command += ["--output", str(out), "--workers", "1", "--entry-script", str(SCRIPTS / "hang.py")]
    command += ["--", "--hang-device", "dev-001", "--marker-dir", str(markers)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCORING_PROGRESS": "off"}
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        _wait_for(markers / "dev-001_temp.attempts", process)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.endswith(f"error: interrupted ({name}); exit code {code}\n"), err
    assert "Traceback" not in err and "no reason recorded" not in err, err
    assert (out / "predictions.parquet").read_bytes() == published
    assert sorted(path.name for path in out.iterdir()) == ["predictions.parquet", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    signal_name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    assert summary["status"] == "interrupted"
    assert summary["failure"] == f"interrupted ({signal_name})"
    assert summary["output"]["kept_predictions"]["published_by_run_started_at"] == started_at
    assert summary["notes"][-1].startswith("the run was interrupted: nothing was published")
    assert summary["items"]["failed"] == 0 and summary["mini_batches"]["not_run"] > 0


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_an_output_folder_that_cannot_be_created_is_one_line_and_exit_2(extract, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert _score(extract, blocker / "out") == 2
    err = capsys.readouterr().err
    assert err == f"error: --output {blocker / 'out'}: {blocker} is a file, not a folder\n"
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_line_and_exit_2(extract, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert _score(extract, out) == 2
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    assert err == f"error: --output {out}: cannot write there (Permission denied)\n"


def test_the_published_predictions_are_complete(extract, tmp_path):
    """The baseline the tests above compare with: 3 devices x 2 sensors x 4 rows."""
    out = tmp_path / "out"
    assert _score(extract, out) == 0
    assert len(pd.read_parquet(out / "predictions.parquet")) == 24


def test_an_interruption_while_the_input_is_listed_still_says_so(extract, tmp_path, monkeypatch):
    """SIGTERM before any mini-batch (a big input being listed): the summary says interrupted,
    not the previous run's success, and the lock is released."""
    from scoring.errors import Terminated
    from scoring.runner import engine

    out = tmp_path / "out"
    assert _score(extract, out) == 0

    def terminated(*args, **kwargs):
        raise Terminated()

    monkeypatch.setattr(engine, "plan_input", terminated)
    assert _score(extract, out) == 143
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["status"], summary["failure"]) == ("interrupted", "interrupted (SIGTERM)")
    assert not (out / output_folder.LOCK_FILE).exists()
    assert (out / "predictions.parquet").is_file(), "the last good predictions are kept"
