"""The package a user installs carries everything its commands need.

A built wheel (not editable, not the checkout) installed into a fresh virtualenv with the
platform set (``requirements.txt``) gives a ``batchscore`` that runs every command: the deploy
commands from the project folder (``pipeline export --stack dev``, ``preflight``), and
``--help`` from any folder. Only the wheel's files are importable there: the checkout is not on
the path (the commands run from a copy of the stack files, with no source beside them).

Slow (a wheel build and a fresh install of the platform set, a few minutes with pip's cache
warm), so marked ``slow``; it runs in CI.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.install import ROOT, copy_packaged, env_of, fresh_venv, ok, run

STACK_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package built as a wheel from a copy of what pyproject.toml packages."""
    source = copy_packaged(tmp_path_factory.mktemp("wheel-source"))
    out = tmp_path_factory.mktemp("dist")
    ok([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
       timeout=600)  # fmt: skip
    (built,) = out.glob("batchscore-*.whl")
    return built


@pytest.fixture(scope="module")
def platform_bin(wheel, tmp_path_factory) -> Path:
    """bin/ of a fresh virtualenv holding the wheel and the platform set, nothing else."""
    venv = tmp_path_factory.mktemp("platform-venv") / "venv"
    install = ["-r", str(ROOT / "requirements.txt"), str(wheel)]
    return fresh_venv(venv, install, "the wheel and the platform set", timeout=1800)


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder as a user has it: the Pulumi project and stack files, no source."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name in STACK_FILES:
        shutil.copy2(ROOT / name, folder / name)
    return folder


@pytest.mark.slow
def test_the_wheel_holds_the_runtime_the_stack_and_the_command_line(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "scoring/steps/score.py",
        "scoring/.dockerignore",
        "components/config/pipeline.py",
        "components/aml/pipeline.py",
        "components/shared/queries/aggregate.sql",
        "batchscore/cli.py",
    ):
        assert module in names, f"{module} missing from {wheel.name}"
    assert not any(name.startswith("tests/") for name in names)


@pytest.mark.slow
def test_pipeline_export_runs_from_the_project_folder(platform_bin, project):
    done = ok(
        ["batchscore", "pipeline", "export", "--stack", "dev", "--out", str(project / "aml")],
        cwd=project, env=env_of(platform_bin, project.parent), timeout=600,
    )  # fmt: skip
    assert "needs the module" not in done.stderr
    assert (project / "aml" / "pipeline.job.yml").is_file(), done.stderr
    assert "validated 5 file(s) offline with azure-ai-ml" in done.stdout, done.stdout


@pytest.mark.slow
def test_preflight_runs_and_asks_for_a_login_not_for_a_module(platform_bin, project):
    done = run(
        ["batchscore", "preflight", "--stack", "dev",
         "--subscription", "00000000-0000-0000-0000-000000000001"],
        cwd=project, env=env_of(platform_bin, project.parent), timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "needs the module" not in done.stderr and "Traceback" not in done.stderr
    assert "az login" in done.stderr, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [["--help"], ["pipeline", "export", "--help"], ["preflight", "--help"], ["score", "--help"]],
    ids=" ".join,
)
def test_help_works_from_any_folder(platform_bin, tmp_path, argv):
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    done = ok(["batchscore", *argv], cwd=elsewhere, env=env_of(platform_bin, tmp_path), timeout=300)
    assert "usage: batchscore" in done.stdout


@pytest.mark.slow
def test_a_deploy_command_outside_the_project_names_the_folder_it_needs(platform_bin, tmp_path):
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    done = run(
        ["batchscore", "pipeline", "export", "--stack", "dev", "--out", str(elsewhere / "aml")],
        cwd=elsewhere, env=env_of(platform_bin, tmp_path), timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "Pulumi.yaml" in done.stderr and "--project-dir" in done.stderr, done.stderr
