"""A first scored window without a single path: every output lands in ``.batchscore/``.

simulate, aggregate, train, extract and score chain through their defaults (each input is
where the command before it writes), and the folder they ran in holds ``.batchscore/`` and
nothing else afterwards. A missing default input names the command that writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchscore.cli import main
from scoring.work_folder import WORK_FOLDER

FIRST_WINDOW = [
    ["simulate", "--devices", "2", "--sensors", "2", "--hours", "6"],
    ["aggregate"],
    ["train", "--jobs", "1", "--no-progress"],
    ["extract", "--end", "latest"],
    ["score", "--workers", "1"],
]


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCORING_PROGRESS", "off")
    return tmp_path


def test_a_first_window_needs_no_path_and_leaves_one_folder(here):
    for argv in FIRST_WINDOW:
        assert main(argv) == 0, argv
    assert [p.name for p in here.iterdir()] == [WORK_FOLDER.name]
    work = here / WORK_FOLDER
    assert {p.name for p in work.iterdir()} == {
        "readings.parquet",
        "sensors.db",
        "models",
        "extract",
        "predictions",
    }
    summary = json.loads((work / "predictions" / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    assert summary["items"]["in"] == 2 * 2 * 12, "the last hour: 12 windows of 5 minutes a pair"
    assert summary["program_arguments"][:2] == ["--models", str(WORK_FOLDER / "models")]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["aggregate"], "--input .batchscore/readings.parquet: no such file "
                        "(`batchscore simulate` writes it)"),
        (["train"], "--db sqlite:///.batchscore/sensors.db: no such database file "
                    ".batchscore/sensors.db (`batchscore aggregate` creates it)"),
        (["extract", "--end", "latest"], "--db sqlite:///.batchscore/sensors.db: no such"),
        (["score"], "--input .batchscore/extract: no such file or folder "
                    "(`batchscore extract` writes it)"),
        (["models", "pack"], "model store .batchscore/models: no such folder "
                             "(`batchscore train` writes it)"),
        (["models", "verify"], "model store .batchscore/models: no such folder"),
        (["models", "upload", "--connection-string", "x", "--container", "c"],
         "--models .batchscore/models: no such folder (`batchscore train` writes it)"),
    ],
)  # fmt: skip
def test_a_missing_default_input_names_the_command_that_writes_it(here, capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (here / WORK_FOLDER).exists(), "a refused command leaves nothing behind"


def test_the_work_folder_is_ignored_by_git():
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split()
    assert f"{WORK_FOLDER}/" in ignored
