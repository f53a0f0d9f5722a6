"""`batchscore train` as a process starts it."""

from __future__ import annotations

from tests.fixtures.imports import loaded_by_import


def test_training_from_a_file_does_not_import_the_database_layer() -> None:
    """SQLAlchemy (through scoring.data.db) cost every training run 0.3 s of start-up; only a
    run that reads the database imports it."""
    loaded = loaded_by_import("batchscore.commands.train", ("sqlalchemy", "scoring.data.db"))
    assert loaded == []


def test_the_train_command_imports_the_training_only_when_it_runs() -> None:
    """``batchscore train --help`` took 2 s: its module imported the training, and with it
    scikit-learn and SciPy, for the defaults its help text shows."""
    loaded = loaded_by_import(
        "batchscore.commands.train", ("sklearn", "scipy", "scoring.models.training")
    )
    assert loaded == []
