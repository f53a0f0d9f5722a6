"""What ships to the cluster: the scoring/ folder only, the same files for the image, the code
snapshot and its content hash, and nothing of the tooling."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

import batchscore.bench
import batchscore.demo
from scoring import code_snapshot

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "scoring"
#: what only the deploy side and the tooling may import
TOOLING_IMPORTS = ("batchscore", "components", "pulumi", "pulumi_azure_native", "azure.ai.ml")


def test_image_context_and_hash_see_the_same_files_as_docker_itself(tmp_path):
    """Docker's own .dockerignore matching (docker-py's exclude_paths) agrees with the list the
    content hash uses, on the real folder plus the by-products a working copy accumulates."""
    context = tmp_path / "scoring"
    shutil.copytree(RUNTIME, context)
    (context / "steps" / "__pycache__").mkdir(exist_ok=True)
    (context / "steps" / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"\0")
    (context / "models" / "stale.pyc").write_bytes(b"\0")
    (context / ".pytest_cache").mkdir(exist_ok=True)
    (context / ".pytest_cache" / "v").write_text("x")
    patterns = code_snapshot.exclude_patterns(context)
    dockers = {path for path in exclude_paths(str(context), patterns) if (context / path).is_file()}
    # Docker always sends .dockerignore to the daemon but COPY leaves an excluded one out
    # (docs.docker.com, "Dockerignore files": "still sent to the daemon ... ADD and COPY do
    # not copy them"); docker-py's exclude_paths lists what is sent.
    dockers.discard(".dockerignore")
    ours = set(code_snapshot.shipped_files(context))
    assert ours == dockers
    assert "steps/score.py" in ours and not any(".pyc" in path for path in ours)


def _working_copy(tmp_path: Path) -> Path:
    """The runtime folder as a working tree leaves it: by-products beside the sources."""
    context = tmp_path / "scoring"
    shutil.copytree(RUNTIME, context, symlinks=True)
    (context / "steps" / "__pycache__").mkdir(exist_ok=True)
    (context / "steps" / "__pycache__" / "score.cpython-311.pyc").write_bytes(b"\0")
    (context / "models" / "stale.pyc").write_bytes(b"\0")
    (context / ".pytest_cache").mkdir(exist_ok=True)
    (context / ".pytest_cache" / "v").write_text("x")
    (context / "data" / ".ipynb_checkpoints").mkdir(exist_ok=True)
    (context / "data" / ".ipynb_checkpoints" / "x.ipynb").write_text("{}")
    return context


def test_azure_ai_ml_uploads_exactly_the_files_the_hash_counts(tmp_path):
    """azure-ai-ml's own ignore-file lookup and upload listing (what ``code:`` uploads) on a
    working copy give the files the content hash and the image count, no by-product."""
    from azure.ai.ml._utils._asset_utils import get_ignore_file, get_upload_files_from_folder

    context = _working_copy(tmp_path)
    ignore = get_ignore_file(context)
    assert ignore.exists(), "azure-ai-ml finds no ignore file in the code folder"
    assert Path(ignore.path).name == code_snapshot.EXCLUDE_FILE, "not the one list"
    uploaded = {
        Path(remote).relative_to("code").as_posix()
        for _, remote in get_upload_files_from_folder(context, prefix="code", ignore_file=ignore)
    }
    assert uploaded == set(code_snapshot.shipped_files(context))
    assert "steps/score.py" in uploaded and not any(
        part in path for path in uploaded for part in ("__pycache__", ".pyc", "_cache", "ipynb")
    )


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_shipped_files_hold_no_tooling():
    shipped = code_snapshot.shipped_files(RUNTIME)
    python = [rel for rel in shipped if rel.endswith(".py")]
    assert "steps/score.py" in python and "runner/engine.py" in python
    offenders = {}
    for rel in python:
        if rel == "__main__.py":  # names the steps when the command line is absent
            continue
        bad = {
            name
            for name in _imports(RUNTIME / rel)
            if any(name == t or name.startswith(t + ".") for t in TOOLING_IMPORTS)
        }
        if bad:
            offenders[rel] = sorted(bad)
    assert not offenders, f"runtime files import tooling: {offenders}"
    tooling = {Path(m.__file__).resolve() for m in (batchscore.bench, batchscore.demo)}
    assert not any((RUNTIME / rel).resolve() in tooling for rel in shipped)


def _component_versions(code_dir: Path) -> dict[str, str]:
    from components.aml import components as comps
    from components.aml.pipeline import build_components
    from components.config.pipeline import PipelineSettings, PipelineTarget

    built = build_components(PipelineSettings(), PipelineTarget(), code_dir=code_dir)
    return {comps.component_of(c).name: comps.component_of(c).version for c in built.all()}


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the checkout's two packages, laid out as in the repository."""
    copy = tmp_path / "checkout"
    for package in ("scoring", "batchscore"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return copy


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_editing_tooling_keeps_component_versions_and_editing_the_runtime_changes_them(checkout):
    before = _component_versions(checkout / "scoring")
    for module in (batchscore.bench, batchscore.demo):
        edited = checkout / Path(module.__file__).resolve().relative_to(ROOT)
        edited.write_text(edited.read_text() + "\n# a tooling edit\n")
    assert _component_versions(checkout / "scoring") == before
    entry_script = checkout / "scoring" / "steps" / "score.py"
    entry_script.write_text(entry_script.read_text() + "\n# a runtime edit\n")
    after = _component_versions(checkout / "scoring")
    assert set(after) == set(before)
    assert all(after[name] != before[name] for name in before), (before, after)


def test_a_folder_without_its_own_list_uses_the_runtimes(tmp_path):
    (tmp_path / "infer.py").write_text("x = 1\n")
    first = code_snapshot.hash_folder(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "infer.cpython-311.pyc").write_bytes(b"\0")
    assert code_snapshot.hash_folder(tmp_path) == first
    (tmp_path / "infer.py").write_text("x = 2\n")
    assert code_snapshot.hash_folder(tmp_path) != first
