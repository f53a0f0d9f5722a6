"""Helper of the toy entry scripts: count attempts per mini-batch in a marker folder.

Imported as a sibling module (the runner puts the script's folder on ``sys.path``, as
Azure ML does with the code snapshot), so it also proves that helper imports work.
"""

from __future__ import annotations

import os
from pathlib import Path


def record_attempt(marker_dir: str | None, key: str) -> int:
    """Append one line for this attempt; return the attempt number (1 = first)."""
    if not marker_dir:
        return 1
    path = Path(marker_dir) / f"{key}.attempts"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    return len(path.read_text(encoding="utf-8").splitlines())


def batch_key(mini_batch, context) -> str:
    """A file-name-safe key: the partition's values, or the mini-batch index for files."""
    if context is not None and context.partition_key_value:
        return "_".join(context.partition_key_value.values())
    return f"batch-{getattr(context, 'minibatch_index', 0)}"
