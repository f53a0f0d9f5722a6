"""README's command reference is the parsers' own: it cannot miss an option or drift."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from batchscore import command_reference
from batchscore.command_reference import block_of, render, walk

ROOT = Path(__file__).resolve().parents[2]


def test_readme_holds_the_reference_the_parsers_write():
    block = block_of((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block is not None, "README has no generated command reference"
    assert block == render(), (
        "README's command reference differs from the parsers: run "
        "`python -m batchscore.command_reference --write README.md`"
    )


def test_every_option_of_every_command_is_in_the_reference():
    """Including the ones the hand-written reference once missed (simulate --start, train
    --jobs, extract --time-zone, publish --summary-out, models upload --create-container...)."""
    text = render()
    sections = dict(
        zip(
            re.findall(r"^#### `batchscore ([^`]+)`", text, re.MULTILINE),
            re.split(r"^#### .*$", text, flags=re.MULTILINE)[1:],
            strict=True,
        )
    )
    for path, parser in walk():
        body = sections[" ".join(path)]
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in command_reference.COMMON:
                    assert f"`{flag}" in body or f", {flag}" in body, (path, flag)
    for path, flag in [
        ("simulate", "--start"),
        ("train", "--min-rows"),
        ("extract", "--time-zone"),
        ("publish", "--summary-out"),
        ("demo", "--score-hours"),
        ("bench", "--modes"),
        ("preflight", "--project-dir"),
        ("models verify", "--load"),
        ("models upload", "--create-container"),
    ]:
        assert f"`{flag}" in sections[path], (path, flag)


def test_publishs_required_folders_say_so():
    section = render().split("#### `batchscore publish`")[1].split("####")[0]
    for flag in ("--scored", "--extract", "--out"):
        assert re.search(rf"`{flag} \w+` \| \*\*required\*\*", section), flag


def test_make_help_prints_it():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^help:.*\n\t.*-m batchscore\.command_reference", makefile, re.MULTILINE)
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and "batchscore.command_reference" in done.stdout, done.stderr
