"""The command line's work folder: where its outputs go when no path is given.

``.batchscore/`` in the current folder (ignored by git in this repository), so the commands
of a first scored window (simulate, aggregate, train, extract, score) chain without a single
path and leave one folder behind, not files scattered over the folder they ran in. Each
command's input defaults to where the command before it writes. A path given on the command
line is used as given; the pipeline steps on the cluster are always given theirs.
"""

from __future__ import annotations

from pathlib import Path

WORK_FOLDER = Path(".batchscore")

READINGS_FILE = WORK_FOLDER / "readings.parquet"  # simulate -> aggregate
DATABASE_FILE = WORK_FOLDER / "sensors.db"  # aggregate -> train, extract
DATABASE_URL = f"sqlite:///{DATABASE_FILE.as_posix()}"
MODELS_FOLDER = WORK_FOLDER / "models"  # train -> score, models pack|verify|upload
EXTRACT_FOLDER = WORK_FOLDER / "extract"  # extract -> score
PREDICTIONS_FOLDER = WORK_FOLDER / "predictions"  # score
DEMO_FOLDER = WORK_FOLDER / "demo"
DIGITS_FOLDER = WORK_FOLDER / "digits"  # example digits
AML_FOLDER = WORK_FOLDER / "aml"  # pipeline export


def ensure_folder_of(path: Path) -> None:
    """Create the work folder when ``path`` lies in it (writers that need their folder to
    exist, such as SQLite, get it; a path given elsewhere is left to its own checks)."""
    if WORK_FOLDER in Path(path).parents:
        WORK_FOLDER.mkdir(exist_ok=True)


#: the command that writes each default input: named when that input is missing
WRITTEN_BY = {
    READINGS_FILE: "simulate",
    MODELS_FOLDER: "train",
    EXTRACT_FOLDER: "extract",
}


def missing(flag: str, path: Path, what: str = "no such file or folder") -> str:
    """The one-line message for an input that is not there, naming the command that writes it
    when it is a default of the work folder."""
    writer = WRITTEN_BY.get(Path(path))
    hint = f" (`batchscore {writer}` writes it)" if writer else ""
    return f"{flag} {path}: {what}{hint}"
