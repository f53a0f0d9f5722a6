"""The package installs into a fresh virtualenv and its console command runs from any folder.

What a newcomer does after ``pip install``: ``batchscore simulate`` in a folder of their own,
with no source checkout on the path. The package is installed from a copy of only what
``pyproject.toml`` packages (``scoring/``, ``components/``, ``batchscore/``), so nothing else of
the repository can leak in, into a fresh virtualenv that gets only the package's declared
dependencies (the runtime set, scoring/requirements.txt). Slow (a fresh install, about a
minute), so marked ``slow``, but it runs in CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ("pyproject.toml", "scoring", "components", "batchscore")


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def _ok(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = _run(argv, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtualenv with the package installed (not editable)."""
    source = tmp_path_factory.mktemp("source")
    for name in PACKAGED:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    venv = tmp_path_factory.mktemp("package-venv") / "venv"
    started = time.monotonic()
    _ok([sys.executable, "-m", "venv", str(venv)], timeout=300)
    python = venv / "bin" / "python"
    _ok([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], timeout=600)
    _ok([str(python), "-m", "pip", "install", "--quiet", str(source)], timeout=1200)
    print(f"\nfresh install of the package: {time.monotonic() - started:.0f} s")
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A folder unrelated to the repository, as a user's own working folder."""
    folder = tmp_path / "my-work"
    folder.mkdir()
    return folder


def _env(bin_dir: Path, home: Path) -> dict[str, str]:
    """Only the fresh virtualenv and the system's own tools on PATH."""
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "SCORING_PROGRESS": "off", "HOME": str(home)}


@pytest.mark.slow
def test_the_console_command_simulates_from_an_unrelated_folder(installed, elsewhere):
    done = _ok(
        ["batchscore", "simulate", "--devices", "2", "--sensors", "3", "--hours", "1"],
        cwd=elsewhere, env=_env(installed, elsewhere.parent), timeout=300,
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
    done = _run(
        ["batchscore", *argv], cwd=elsewhere, env=_env(installed, elsewhere.parent), timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert expected in done.stderr
    assert not (elsewhere / ".batchscore").exists(), "refused before writing anything"


@pytest.mark.slow
def test_python_dash_m_batchscore_is_the_command_line(installed, elsewhere):
    done = _ok(
        [str(installed / "python"), "-m", "batchscore", "--help"],
        cwd=elsewhere, env=_env(installed, elsewhere.parent), timeout=120,
    )  # fmt: skip
    assert "simulate" in done.stdout and "usage: batchscore" in done.stdout


@pytest.mark.slow
def test_python_dash_m_scoring_names_the_steps_and_never_reaches_up(installed, elsewhere):
    """The runtime does not import the command line: it names its steps and points up."""
    env = _env(installed, elsewhere.parent)
    done = _ok([str(installed / "python"), "-m", "scoring", "--help"], cwd=elsewhere, env=env)
    assert "python -m scoring.steps.extract" in done.stdout and "batchscore" in done.stdout
    wrong = _run([str(installed / "python"), "-m", "scoring", "simulate"], cwd=elsewhere, env=env)
    assert wrong.returncode == 2 and "python -m batchscore" in wrong.stderr


@pytest.mark.slow
def test_the_package_carries_what_the_code_reads_at_run_time(installed, elsewhere):
    probe = "from scoring import code_snapshot as c; print(c.RUNTIME_EXCLUDE_FILE.is_file())"
    done = _ok(
        [str(installed / "python"), "-c", probe],
        cwd=elsewhere,
        env=_env(installed, elsewhere.parent),
    )
    assert done.stdout.strip() == "True", "scoring/.dockerignore is package data"
