"""The command line's mistake walk: every command and sub-action, given an output path that is
an existing file, a missing input and a bad value (and a flag it does not know), answers in one
line on stderr with exit code 2, and no traceback anywhere.

Each case runs ``python -m batchscore`` as a real process in a folder of its own, so whatever
reaches stderr (a log line before the refusal, a library's warning, a traceback) is seen. The
table must cover every command the parsers know (found by walking them, so a new command or
action without its cases fails here); a case a command cannot have says why instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.cli_walk import leaf_paths

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "tests" / "fixtures" / "entry_scripts" / "echo.py"
KINDS = ("output is a file", "missing input", "bad value")
AZURITE = ["--connection-string", "UseDevelopmentStorage=true", "--container", "models"]
PIPELINE_RUN = ["--workspace-id", "/subscriptions/x", "--schedule-name", "s"]
#: what a command needs before argparse looks at an unknown flag
REQUIRED = {
    ("extract",): ["--end", "latest"],
    ("example",): ["digits"],
    ("models", "upload"): AZURITE,
    ("pipeline", "backfill"): ["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T01:00:00Z"],
    ("preflight",): ["--stack", "dev"],
    ("publish",): ["--scored", ".", "--extract", ".", "--out", "o"],
    ("models", "rollback"): ["--to", "1"],
    ("models", "pin"): ["d", "s", "--to", "1"],
    ("models", "unpin"): ["d", "s"],
    ("runs", "list"): ["--predictions", "."],
    ("runs", "show"): ["latest", "--predictions", "."],
    ("runs", "chart"): ["--predictions", ".", "--out", "c.png"],
}

# {file}: an existing file; {tmp}: an existing empty folder; {readings}: a valid readings CSV.
# Each case: (arguments after the command, a fragment the one line must hold), or the reason
# the command has no such case.
CASES: dict[tuple[str, ...], dict[str, tuple[list[str], str] | str]] = {
    ("simulate",): {
        "output is a file": (["--output", "{file}/r.parquet"], "{file} is a file, not a folder"),
        "missing input": "simulate generates its readings: it reads nothing",
        "bad value": (["--devices", "0"], "--devices must be at least 1"),
    },
    ("aggregate",): {
        "output is a file": (
            ["--input", "{readings}", "--db", "sqlite:///{file}/s.db"],
            "--db sqlite:///{file}/s.db: {file} is a file, not a folder",
        ),
        "missing input": (["--input", "{tmp}/nope.csv"], "--input {tmp}/nope.csv: no such file"),
        "bad value": (["--window-minutes", "0"], "--window-minutes must be at least 1"),
    },
    ("train",): {
        "output is a file": (
            ["--input", "{readings}", "--models", "{file}"],
            "--models {file}: exists and is not a folder",
        ),
        "missing input": (["--input", "{tmp}/nope.csv"], "--input {tmp}/nope.csv: no such file"),
        "bad value": (["--input", "{readings}", "--nu", "2"], "nu"),
    },
    ("extract",): {
        "output is a file": (
            ["--end", "latest", "--output", "{file}"],
            "--output {file}: exists and is not a folder",
        ),
        "missing input": (
            ["--end", "latest", "--db", "sqlite:///{tmp}/nope.db"],
            "no such database file {tmp}/nope.db",
        ),
        "bad value": (["--end", "latest", "--lookback-minutes", "0"], "--lookback-minutes"),
    },
    ("score",): {
        "output is a file": (
            ["--input", "{readings}", "--models", "{tmp}", "--output", "{file}"],
            "--output {file}: exists and is not a folder",
        ),
        "missing input": (["--input", "{tmp}/nope"], "--input {tmp}/nope: no such file or folder"),
        "bad value": (
            ["--input", "{readings}", "--models", "{tmp}", "--workers", "0"],
            "--workers 0: must be at least 1",
        ),
    },
    ("demo",): {
        "output is a file": (["--workdir", "{file}"], "--workdir {file}: exists and is not a"),
        "missing input": "the demo simulates its own readings",
        "bad value": (["--workers", "0"], "--workers must be at least 1"),
    },
    ("example",): {
        "output is a file": (["digits", "--workdir", "{file}"], "--workdir {file}: exists"),
        "missing input": "the example makes its own images from scikit-learn's bundled digits",
        "bad value": (["digits", "--workers", "0"], "--workers 0: must be at least 1"),
    },
    ("models", "pack"): {
        "output is a file": (["{file}"], "model store {file}: exists and is not a folder"),
        "missing input": (["{tmp}/nope"], "model store {tmp}/nope: no such folder"),
        "bad value": (["{tmp}"], "no manifest.json here (not a model store)"),
    },
    ("models", "verify"): {
        "output is a file": "verify writes nothing",
        "missing input": (["{tmp}/nope"], "model store {tmp}/nope: no such folder"),
        "bad value": (["{tmp}"], "no manifest.json here (not a model store)"),
    },
    ("models", "upload"): {
        "output is a file": "upload writes to a Blob container, not to a local path",
        "missing input": (
            ["--models", "{tmp}/nope", *AZURITE],
            "--models {tmp}/nope: no such folder",
        ),
        "bad value": (["--models", "{tmp}", *AZURITE, "--workers", "0"], "--workers 0"),
    },
    ("models", "history"): {
        "output is a file": "history writes nothing",
        "missing input": (["--models", "{tmp}/nope"], "--models {tmp}/nope: no such folder"),
        "bad value": (["--models", "{tmp}", "--container", "models"], "--container needs one"),
    },
    ("models", "rollback"): {
        "output is a file": "rollback rewrites the store's manifest in place: no output path",
        "missing input": (
            ["--models", "{tmp}/nope", "--to", "1"],
            "--models {tmp}/nope: no such folder",
        ),
        "bad value": (["--models", "{tmp}", "--to", "1"], "generation 1 is not in {tmp}"),
    },
    ("models", "pin"): {
        "output is a file": "pin rewrites the store's manifest in place: no output path",
        "missing input": (
            ["d", "s", "--models", "{tmp}/nope", "--to", "1"],
            "--models {tmp}/nope: no such folder",
        ),
        "bad value": (["d", "s", "--models", "{tmp}", "--to", "x"], "invalid int value: 'x'"),
    },
    ("models", "unpin"): {
        "output is a file": "unpin rewrites the store's manifest in place: no output path",
        "missing input": (["d", "s", "--models", "{tmp}/nope"], "--models {tmp}/nope: no such"),
        "bad value": (["d", "s", "--models", "{tmp}"], "Device='d' Sensor='s' is not pinned"),
    },
    ("retrain",): {
        "output is a file": (["--models", "{file}"], "--models {file}: exists and is not a folder"),
        "missing input": (
            ["--db", "sqlite:///{tmp}/nope.db", "--models", "{tmp}/m"],
            "no such database file {tmp}/nope.db",
        ),
        "bad value": (["--lookback-days", "0"], "--lookback-days 0: must be at least 1"),
    },
    ("pipeline", "export"): {
        "output is a file": (["--out", "{file}"], "--out {file}: exists and is not a folder"),
        "missing input": (
            ["--out", "{tmp}/aml", "--entry-script", "{tmp}/nope.py", "--input-type", "uri_folder"],
            "--entry-script {tmp}/nope.py: no such file",
        ),
        "bad value": (["--out", "{tmp}/aml", "--image", "scoring:latest"], "image: must be"),
    },
    ("pipeline", "run"): {
        "output is a file": "run writes nothing locally: the job's outputs stay in Azure",
        "missing input": (["--workspace-id", "/subscriptions/x"], "go together"),
        "bad value": ([*PIPELINE_RUN, "--end", "someday"], "someday"),
    },
    ("pipeline", "backfill"): {
        "output is a file": "backfill writes nothing locally: the runs' outputs stay in Azure",
        "missing input": (
            ["--from", "2026-01-01T00:00:00Z", "--to", "now", "--workspace-id", "/subscriptions/x"],
            "go together",
        ),
        "bad value": ([*PIPELINE_RUN, "--from", "someday", "--to", "now"], "someday"),
    },
    ("preflight",): {
        "output is a file": "preflight writes nothing: it reads Azure and the stack files",
        "missing input": (
            ["--stack", "nope", "--subscription", "x"],
            "Pulumi.nope.yaml",
        ),
        "bad value": (
            ["--stack", "dev", "--subscription", "x", "--project-dir", "{file}"],
            "{file}",
        ),
    },
    ("publish",): {
        "output is a file": (
            ["--scored", "{tmp}", "--extract", "{tmp}", "--out", "{file}"],
            "--out {file}: exists and is not a folder",
        ),
        "missing input": (
            ["--scored", "{tmp}/nope", "--extract", "{tmp}", "--out", "{tmp}/out"],
            "--scored {tmp}/nope: not a folder",
        ),
        "bad value": (
            ["--scored", "{tmp}", "--extract", "{file}", "--out", "{tmp}/out"],
            "--extract {file}: not a folder",
        ),
    },
    ("runs", "list"): {
        "output is a file": "list prints; it writes nothing",
        "missing input": (["--predictions", "{tmp}/nope"], "--predictions {tmp}/nope: no such"),
        "bad value": (["--predictions", "{tmp}", "--last", "0"], "--last 0: must be at least 1"),
    },
    ("runs", "show"): {
        "output is a file": "show prints; it writes nothing",
        "missing input": (
            ["2024-01-01T01:00:00Z", "--predictions", "{tmp}/nope"],
            "--predictions {tmp}/nope",
        ),
        "bad value": (["someday", "--predictions", "{tmp}"], "someday"),
    },
    ("runs", "chart"): {
        "output is a file": (
            ["--predictions", "{tmp}", "--out", "{file}/chart.png"],
            "{file} is a file, not a folder",
        ),
        "missing input": (
            ["--predictions", "{tmp}/nope", "--out", "{tmp}/c.png"],
            "--predictions {tmp}/nope: no such",
        ),
        "bad value": (
            ["--predictions", "{tmp}", "--out", "{tmp}/c.png", "--last", "0"],
            "--last 0: must be at least 1",
        ),
    },
    ("bench",): {
        "output is a file": (["--json", "{file}/r.json"], "{file} is a file, not a folder"),
        "missing input": "bench generates its own fleet",
        "bad value": (["--modes", "fastest"], "--modes 'fastest'"),
    },
}


# More mistakes, found by trying to break the commands as a new user would: each one line
# naming what and where, with exit code 2 (or the code given), no traceback. {notsv}: a
# readings file without TS; {runs}: a predictions root whose one window's summary is cut short.
CLOSED_PORT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1"
)
EXIT_CODES = {
    (("runs", "show"), "a summary cut short"): 1,
    (("runs", "list"), "an unreachable storage endpoint"): 1,
}
HONEST: dict[tuple[tuple[str, ...], str], tuple[list[str], str]] = {
    (("runs", "show"), "a summary cut short"): (
        ["window=20260101T100000Z", "--predictions", "{runs}"],
        "window=20260101T100000Z: ",
    ),
    (("runs", "list"), "an unreachable storage endpoint"): (
        ["--connection-string", CLOSED_PORT_STORAGE, "--container", "c"],
        "cannot list http://127.0.0.1:9/devstoreaccount1/c/scored: the storage endpoint is "
        "unreachable",
    ),
    (("train",), "input without TS"): (
        ["--input", "{notsv}", "--models", "{tmp}/m"],
        "--input {notsv}: missing column(s) TS",
    ),
    (("simulate",), "output on a file system that takes no files"): (
        ["--devices", "1", "--hours", "1", "--output", "/proc/r.parquet"],
        "--output /proc/r.parquet: cannot write there",
    ),
    (("score",), "models is a file"): (
        ["--input", "{readings}", "--models", "{file}"],
        "--models {file}: exists and is not a folder",
    ),
    (("extract",), "an end the clock shows twice"): (
        ["--end", "2024-10-27T02:30:00", "--time-zone", "Europe/Berlin"],
        "is ambiguous in Europe/Berlin",
    ),
    (("extract",), "an end the clock skips"): (
        ["--end", "2024-03-31T02:30:00", "--time-zone", "Europe/Berlin"],
        "does not exist in Europe/Berlin",
    ),
}


def _cases() -> list[tuple[tuple[str, ...], str, list[str], str]]:
    cases = []
    for path, kinds in CASES.items():
        for kind, case in kinds.items():
            if isinstance(case, tuple):
                cases.append((path, kind, *case))
        unknown = [*REQUIRED.get(path, []), "--no-such-flag"]
        cases.append((path, "unknown flag", unknown, "unrecognized arguments: --no-such-flag"))
    cases.extend((path, kind, *case) for (path, kind), case in HONEST.items())
    return cases


def _id(path: tuple[str, ...], kind: str) -> str:
    return f"{' '.join(path)}: {kind}"


def test_every_command_has_every_case_or_says_why():
    assert sorted(CASES) == sorted(leaf_paths()), "a command without its mistake cases"
    assert {path for path, _ in HONEST} <= set(CASES)
    for path, kinds in CASES.items():
        assert tuple(kinds) == KINDS, path
        for kind, case in kinds.items():
            assert isinstance(case, tuple) or (isinstance(case, str) and case), (path, kind)


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, str, str]]:
    """Every case's process, run a few at a time (each in a folder of its own)."""
    base = tmp_path_factory.mktemp("mistakes")

    def run(index: int, path, kind, argv, fragment):
        home = base / f"case-{index}"
        (home / "empty").mkdir(parents=True)
        (home / "a-file").write_text("not a folder")
        readings = home / "readings.csv"
        pd.DataFrame(
            {"TS": ["2024-01-01 00:05"], "Device": ["d"], "Sensor": ["s"], "Value": [1.0]}
        ).to_csv(readings, index=False)
        notsv = home / "no-ts.csv"
        pd.DataFrame({"Device": ["d"] * 30, "Sensor": ["s"] * 30, "Value": range(30)}).to_csv(
            notsv, index=False
        )
        fill = {"file": home / "a-file", "tmp": home / "empty", "readings": readings}
        fill["notsv"] = notsv
        window = home / "runs" / "window=20260101T100000Z"
        window.mkdir(parents=True)
        (window / "summary.json").write_text('{"window": "window=2026')
        fill["runs"] = home / "runs"
        argv = [part.format(**fill) for part in argv]
        done = subprocess.run(
            [sys.executable, "-m", "batchscore", *path, *argv],
            cwd=home,
            env={**os.environ, "PYTHONPATH": str(ROOT), "SCORING_PROGRESS": "off"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        return _id(path, kind), (done, fragment.format(**fill), " ".join(argv))

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(run, i, *case) for i, case in enumerate(_cases())]
        return dict(future.result() for future in futures)


@pytest.mark.parametrize(
    ("path", "kind"), [(c[0], c[1]) for c in _cases()], ids=[_id(c[0], c[1]) for c in _cases()]
)
def test_a_mistake_is_one_line_and_exit_2(answers, path, kind):
    done, fragment, argv = answers[_id(path, kind)]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    shown = f"batchscore {' '.join(path)} {argv}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert "Traceback" not in done.stderr + done.stdout, shown
    assert done.returncode == EXIT_CODES.get((path, kind), 2), shown
    assert len(lines) == 1, shown
    assert "error: " in lines[0] and fragment in lines[0], shown


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path):
    """``batchscore ... | head -1`` where the reader is gone before the command writes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "batchscore", "pipeline", "export", "--out", str(tmp_path),
         "--no-validate"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    process.stdout.close()  # the reader is gone before the first byte
    err = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in err and "Exception ignored" not in err, err
