"""`batchscore train` as a process starts it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_training_from_a_file_does_not_import_the_database_layer() -> None:
    """SQLAlchemy (through scoring.data.db) cost every training run 0.3 s of start-up; only a
    run that reads the database imports it."""
    code = (
        "import sys, batchscore.commands.train as t; "
        "print(sorted(m for m in ('sqlalchemy', 'scoring.data.db') if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "[]"
