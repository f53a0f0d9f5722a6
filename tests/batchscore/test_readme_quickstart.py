"""The README's "A first scored window, by hand" runs as written: its shell block, line by
line, in a fresh folder, with the installed ``batchscore`` command (``make venv`` installs it
beside this interpreter), and it ends with the predictions it says it writes."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## A first scored window, by hand"


def quickstart_commands(readme: str) -> list[str]:
    """The commands of the section's first ``bash`` block, one per line."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    block = re.search(r"```bash\n(.*?)```", readme[start:end], re.S)
    assert block, f"README: no bash block under {SECTION!r}"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quickstart_block_is_what_the_test_reads():
    commands = quickstart_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert commands[0].startswith("batchscore simulate") and "batchscore score" in commands


def test_the_readme_quickstart_runs_as_written(tmp_path):
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "batchscore").exists(), "run `make venv`: it installs the batchscore command"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env["SCORING_PROGRESS"] = "off"
    for command in quickstart_commands((ROOT / "README.md").read_text(encoding="utf-8")):
        done = subprocess.run(
            shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{command}\n{done.stderr}"
    out = tmp_path / ".batchscore" / "predictions"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    predictions = pq.read_table(out / "predictions.parquet")
    # 5 devices x 3 sensors, an hour of 5-minute windows each
    assert predictions.num_rows == 5 * 3 * 12
    assert predictions.column_names[:4] == ["TS", "Device", "Sensor", "Value"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".batchscore"], "nothing scattered"
