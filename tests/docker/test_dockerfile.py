"""docker/Dockerfile: hadolint clean, secure and complete, and its /app layout imports.

No Docker engine is available here, so the image's file layout (COPY of the scoring/ context
minus .dockerignore, PYTHONPATH=/app) is rebuilt in a temporary folder and run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from scoring import code_snapshot

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
CONTEXT = ROOT / "scoring"
SECRET_WORDS = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCOUNTKEY|CONNECTION_STRING|_KEY\b)", re.I
)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        result.append((word.upper(), " ".join(rest.split())))
    return result


def _all(kind: str) -> list[str]:
    return [args for word, args in _instructions() if word == kind]


def test_hadolint_is_clean():
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or "hadolint")
    done = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_image_is_slim_and_pinned_by_tag():
    (base,) = _all("FROM")
    image, _, tag = base.split("@")[0].partition(":")
    assert image == "python"
    assert re.fullmatch(r"3\.11(\.\d+)?-slim-bookworm", tag), f"base image tag {tag!r}"


def test_has_what_azure_mls_side_of_a_job_uses_in_the_container():
    """bash and python on PATH (the slim Python image has both), fusermount for the data
    mounts, and no unprivileged USER that could not make them (see the Dockerfile)."""
    run = " ".join(_all("RUN"))
    install = re.search(r"apt-get install -y --no-install-recommends ([^&]*)", run).group(1)
    assert "fuse3" in install.split()
    assert not _all("USER")


def test_odbc_driver_comes_from_microsofts_signed_repository():
    run = next(r for r in _all("RUN") if "msodbcsql18" in r)
    assert "ACCEPT_EULA=Y apt-get install -y --no-install-recommends msodbcsql18" in run
    assert "signed-by=/usr/share/keyrings/microsoft-prod.gpg" in run
    assert "https://packages.microsoft.com/keys/microsoft.asc" in run
    assert "https://packages.microsoft.com/debian/12/prod bookworm main" in run
    assert run.rstrip().endswith("rm -rf /var/lib/apt/lists/*"), "apt lists kept in the layer"
    for apt_install in re.findall(r"apt-get install [^&]*", run):
        assert "--no-install-recommends" in apt_install, apt_install


def test_requirements_and_package_are_installed_as_the_contract_says():
    copies = _all("COPY")
    assert "requirements.txt requirements-image.txt /tmp/requirements/" in copies
    assert ". /app/scoring" in copies
    pip = next(r for r in _all("RUN") if "pip install" in r)
    assert "--no-cache-dir -r /tmp/requirements/requirements-image.txt" in pip
    env = " ".join(_all("ENV"))
    assert "PYTHONPATH=/app" in env
    for copy in (c.split() for c in copies if not c.startswith("--from")):
        for source in copy[:-1]:
            if source != ".":
                assert (CONTEXT / source).exists(), f"COPY {source}: not in the build context"


def test_no_secrets_or_remote_adds():
    assert not _all("ADD"), "ADD fetches or unpacks implicitly; use COPY"
    for kind in ("ARG", "ENV", "LABEL"):
        for args in _all(kind):
            assert not SECRET_WORDS.search(args), f"{kind} {args} looks like a secret"


def build_app_layout(target: Path) -> Path:
    """Copy the build context into ``target/scoring`` as `COPY . /app/scoring` would."""
    for rel in code_snapshot.shipped_files(CONTEXT):
        destination = target / "scoring" / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CONTEXT / rel, destination)
    return target


def test_the_image_layout_has_the_package_without_caches(tmp_path):
    app = build_app_layout(tmp_path / "app")
    assert (app / "scoring" / "steps" / "score.py").is_file()
    assert (app / "scoring" / "runner" / "__init__.py").is_file()
    assert not list(app.rglob("__pycache__"))


@pytest.mark.parametrize(
    "argv", [["-m", "scoring", "--help"], ["-c", "import scoring.steps.score"]]
)
def test_package_runs_from_the_image_layout(tmp_path, argv):
    """With only PYTHONPATH=/app (as in the image) the CLI and the entry script import.

    ``-S`` with the installed libraries on the path: no ``.pth`` file runs, so this
    checkout's editable install of the tooling (``batchscore``) is not there either, as in
    the image."""
    app = build_app_layout(tmp_path / "app")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    libraries = sysconfig.get_paths()["purelib"]
    done = subprocess.run(
        [sys.executable, "-S", *argv],
        cwd=elsewhere,
        env={"PYTHONPATH": os.pathsep.join([str(app), libraries]), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    if "--help" in argv:  # the image has no batchscore: it names the steps instead
        assert "python -m scoring.steps.extract" in done.stdout, done.stdout
