"""The package installs into a fresh virtualenv and its console command runs from any folder.

What a newcomer does after ``pip install``: ``batchscore simulate`` in a folder of their own,
with no source checkout on the path. The package is installed from a copy of only what
``pyproject.toml`` packages (``scoring/``, ``components/``, ``batchscore/``), so nothing else of
the repository can leak in, into a fresh virtualenv that gets only the package's declared
dependencies (the runtime set, scoring/requirements.txt). Slow (a fresh install, about a
minute), so marked ``slow``, but it runs in CI.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.install import copy_packaged, env_of, fresh_venv, ok, run


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtualenv with the package installed (not editable)."""
    source = copy_packaged(tmp_path_factory.mktemp("source"))
    venv = tmp_path_factory.mktemp("package-venv") / "venv"
    return fresh_venv(venv, [str(source)], "the package", timeout=1200)


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A folder unrelated to the repository, as a user's own working folder."""
    folder = tmp_path / "my-work"
    folder.mkdir()
    return folder


@pytest.mark.slow
def test_the_console_command_simulates_from_an_unrelated_folder(installed, elsewhere):
    done = ok(
        ["batchscore", "simulate", "--devices", "2", "--sensors", "3", "--hours", "1"],
        cwd=elsewhere, env=env_of(installed, elsewhere.parent), timeout=300,
    )  # fmt: skip
    readings = pd.read_parquet(elsewhere / ".batchscore" / "readings.parquet")
    assert len(readings) == 2 * 3 * 60, done.stderr
    assert set(readings.columns) >= {"TS", "Device", "Sensor", "Value"}
    assert [p.name for p in elsewhere.iterdir()] == [".batchscore"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["example", "digits"], "come with a clone of the repository, not with an installed "
                                "package: clone it and `pip install -e .` there"),
        (["pipeline", "export"], "batchscore pipeline needs the package 'PyYAML' (module "
                                 "yaml), which this environment lacks"),
    ],
    ids=["example without its files", "a platform command in the runtime set"],
)  # fmt: skip
def test_what_the_installed_package_cannot_do_is_one_line_naming_the_fix(
    installed, elsewhere, argv, expected
):
    done = run(
        ["batchscore", *argv], cwd=elsewhere, env=env_of(installed, elsewhere.parent), timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert expected in done.stderr
    assert not (elsewhere / ".batchscore").exists(), "refused before writing anything"


@pytest.mark.slow
def test_python_dash_m_batchscore_is_the_command_line(installed, elsewhere):
    done = ok(
        [str(installed / "python"), "-m", "batchscore", "--help"],
        cwd=elsewhere, env=env_of(installed, elsewhere.parent), timeout=120,
    )  # fmt: skip
    assert "simulate" in done.stdout and "usage: batchscore" in done.stdout


@pytest.mark.slow
def test_python_dash_m_scoring_names_the_steps_and_never_reaches_up(installed, elsewhere):
    """The runtime does not import the command line: it names its steps and points up."""
    env = env_of(installed, elsewhere.parent)
    done = ok([str(installed / "python"), "-m", "scoring", "--help"], cwd=elsewhere, env=env)
    assert "python -m scoring.steps.extract" in done.stdout and "batchscore" in done.stdout
    wrong = run([str(installed / "python"), "-m", "scoring", "simulate"], cwd=elsewhere, env=env)
    assert wrong.returncode == 2 and "python -m batchscore" in wrong.stderr


@pytest.mark.slow
def test_the_package_carries_what_the_code_reads_at_run_time(installed, elsewhere):
    probe = "from scoring import code_snapshot as c; print(c.RUNTIME_EXCLUDE_FILE.is_file())"
    done = ok(
        [str(installed / "python"), "-c", probe],
        cwd=elsewhere,
        env=env_of(installed, elsewhere.parent),
    )
    assert done.stdout.strip() == "True", "scoring/.dockerignore is package data"
