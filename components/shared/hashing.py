"""Content hashes: a version or trigger that changes exactly when the content does.

* :func:`stable_hash` of any JSON-able value (the Stream Analytics definitions, the SQL
  bootstrap script).
* :func:`hash_folder` of the scoring code, shortened (the scoring pipeline's code input).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from scoring.code_snapshot import hash_folder as scoring_hash_folder


def stable_hash(value: Any, *, length: int = 16) -> str:
    """Hex SHA-256 of ``value`` as canonical JSON (sorted keys), truncated to ``length``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def hash_folder(root: str | Path, *, length: int = 16) -> str:
    """The scoring code's content hash (:func:`scoring.code_snapshot.hash_folder`), shortened:
    the same files count as a change here as in the Azure ML component versions."""
    return scoring_hash_folder(root)[:length]
