"""A content hash of a code folder: the one both the Azure ML component versions and the
Pulumi provider's change detection use, so they agree on what "the code changed" means."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Build by-products, editor and VCS noise never count as a change of the code.
SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"})
SKIP_SUFFIXES = (".pyc", ".pyo")


def hash_folder(root: str | Path) -> str:
    """Hex SHA-256 over every file under ``root`` (relative path and bytes), in sorted order."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"cannot hash folder {base}: it does not exist")
    digest = hashlib.sha256()
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if any(part in SKIP_DIRS for part in rel.parts) or not path.is_file():
            continue
        if path.suffix in SKIP_SUFFIXES:
            continue
        digest.update(rel.as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
