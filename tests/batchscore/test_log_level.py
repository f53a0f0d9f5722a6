"""``--log-level``: every command and sub-action takes it, before or after the command, and
it sets the level of the command itself and of the worker processes it starts; third-party
libraries (the Azure SDK's HTTP logging) speak below WARNING only at DEBUG."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batchscore.cli import COMMANDS, main
from scoring import log_config
from tests.fixtures.cli_walk import command_paths, leaf_paths
from tests.fixtures.toy_data import write_extract

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "tests" / "fixtures" / "entry_scripts"


def test_the_walk_finds_the_sub_actions():
    paths = command_paths()
    assert ("models", "upload") in paths and ("pipeline", "export") in paths
    assert ("models",) in paths and ("models", "upload") in leaf_paths()
    assert ("models",) not in leaf_paths() and ("simulate",) in leaf_paths()
    assert len(paths) >= len(COMMANDS) + 5


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_takes_log_level_after_it(path, capsys):
    assert main([*path, "--log-level", "error", "--help"]) == 0
    assert "--log-level" in capsys.readouterr().out
    assert main([*path, "--log-level", "LOUD"]) == 2
    err = capsys.readouterr().err
    assert "--log-level: invalid choice: 'LOUD'" in err and len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    return write_extract(tmp_path_factory.mktemp("log-level") / "in", devices=1, rows=2)


def _score_stderr(extract: Path, out: Path, before: list[str], after: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "batchscore", *before, "score", "--input", str(extract),
         "--output", str(out), "--entry-script", str(SCRIPTS / "log_lines.py"),
         "--workers", "1", *after],
        cwd=ROOT, env={**os.environ, "SCORING_PROGRESS": "off"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("before", "after"),
    [([], ["--log-level", "DEBUG"]), (["--log-level", "DEBUG"], [])],
    ids=["after the command", "before the command"],
)
def test_debug_reaches_the_command_and_its_workers(extract, tmp_path, before, after):
    err = _score_stderr(extract, tmp_path / "out", before, after)
    assert "entry debug line" in err, "the worker logs at DEBUG"
    assert "INFO scoring.runner: scoring " in err, "the command itself logs"


@pytest.mark.parametrize(
    ("before", "after"),
    [([], ["--log-level", "WARNING"]), (["--log-level", "DEBUG"], ["--log-level", "WARNING"])],
    ids=["after the command", "after wins over before"],
)
def test_warning_quiets_the_command_and_its_workers(extract, tmp_path, before, after):
    err = _score_stderr(extract, tmp_path / "out", before, after)
    assert "entry info line" not in err and "entry debug line" not in err
    assert " INFO " not in err and " DEBUG " not in err, err


@pytest.mark.parametrize(
    ("level", "azure"),
    [("DEBUG", logging.DEBUG), ("INFO", logging.WARNING), ("ERROR", logging.ERROR)],
)
def test_azure_sdk_logs_below_warning_only_at_debug(level, azure):
    log_config.configure(level)
    assert logging.getLogger().level == logging.getLevelName(level)
    http = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    assert http.getEffectiveLevel() == azure
    log_config.configure("INFO")
