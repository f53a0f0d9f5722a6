"""What ships to the cluster from the ``scoring/`` folder, and the content hash of it.

Three things must agree on "the runtime's files": the scoring image (built with this folder
as its Docker build context), the Azure ML code snapshot of the pipeline steps (the same
folder, uploaded by azure-ai-ml) and the content hash that the component versions and the
Pulumi provider's change detection derive from. They share one exclude list, this folder's
``.dockerignore`` (the file Docker itself reads for the build context). azure-ai-ml does not
read ``.dockerignore``: it uploads a code folder minus the patterns of its ``.amlignore``, else
its ``.gitignore`` (``get_ignore_file`` in azure/ai/ml/_utils/_asset_utils.py), so
``.amlignore`` here is a symbolic link to the same file. Build by-products never count, and
nothing else lives here (the tooling is the ``batchscore`` package).
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path

EXCLUDE_FILE = ".dockerignore"
#: the name azure-ai-ml reads; in the runtime folder a symbolic link to EXCLUDE_FILE
AML_EXCLUDE_FILE = ".amlignore"
#: this folder's own list; also used for a code folder that has none (a user's entry script)
RUNTIME_EXCLUDE_FILE = Path(__file__).resolve().parent / EXCLUDE_FILE


def exclude_patterns(root: str | Path) -> list[str]:
    """The patterns of ``root``'s exclude list, or of the runtime's when ``root`` has none
    (comments and blank lines dropped)."""
    path = Path(root) / EXCLUDE_FILE
    if not path.is_file():
        path = RUNTIME_EXCLUDE_FILE
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def is_excluded(relpath: str, patterns: list[str]) -> bool:
    """True when a path (POSIX, relative to the root) or one of its folders matches a pattern.

    The subset of ``.dockerignore`` syntax the list uses: ``name`` and ``dir/name`` globs
    from the root, and ``**/glob`` at any depth; no ``!`` exceptions.
    """
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatchcase(part, tail) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            return True
    return False


def shipped_files(root: str | Path) -> list[str]:
    """Every file under ``root`` that ships (POSIX paths relative to it), sorted."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"cannot list folder {base}: it does not exist")
    patterns = exclude_patterns(base)
    files = (path.relative_to(base).as_posix() for path in base.rglob("*") if path.is_file())
    return sorted(rel for rel in files if not is_excluded(rel, patterns))


def hash_folder(root: str | Path) -> str:
    """Hex SHA-256 over every shipped file under ``root`` (relative path and bytes)."""
    base = Path(root)
    digest = hashlib.sha256()
    for rel in shipped_files(base):
        digest.update(rel.encode("utf-8") + b"\0")
        digest.update((base / rel).read_bytes() + b"\0")
    return digest.hexdigest()
