"""The README's layout section matches the tree: every path it names exists, and every package
of the three floors (and every top-level folder) is named there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ("scoring", "components", "batchscore")


def layout_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def named_paths() -> set[str]:
    """The paths in the first column of the layout table (`a`, `b` in one cell count apart)."""
    paths = set()
    for line in layout_section().splitlines():
        if line.startswith("| `"):
            cell = line.split("|")[1]
            paths.update(p.rstrip("/") for p in re.findall(r"`([^`]+)`", cell))
    return paths


def test_every_path_the_layout_names_exists():
    missing = sorted(p for p in named_paths() if not (ROOT / p.replace("*", "")).exists()
                     and not list(ROOT.glob(p)))  # fmt: skip
    assert not missing, f"README layout names paths that do not exist: {missing}"


def test_every_package_and_top_level_folder_is_in_the_layout():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    folders = {Path(f).parts[0] for f in tracked if len(Path(f).parts) > 1}
    packages = {
        str(Path(f).parent)
        for f in tracked
        if f.endswith("/__init__.py") and Path(f).parts[0] in FLOORS
    }
    wanted = (folders - {".ci"}) | packages
    named = named_paths()
    section = layout_section()
    unnamed = sorted(
        p for p in wanted
        if p not in named and f"`{Path(p).name}/`" not in section
        and not any(n.startswith(f"{p}/") for n in named)
    )  # fmt: skip
    assert not unnamed, f"folders missing from the README's layout: {unnamed}"
