"""``batchscore score``: flags, exit codes, one-line usage errors, the printed summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from batchscore.cli import main
from scoring.data.schema import PREDICTION_COLUMNS, PREDICTION_SCHEMA
from scoring.errors import EXIT_EMPTY
from tests.fixtures.imports import loaded_by_import
from tests.fixtures.toy_data import write_extract, write_files, write_model_store

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "entry_scripts"


@pytest.fixture()
def extract(tmp_path) -> Path:
    return write_extract(tmp_path / "in", devices=2, rows=3)


def _score(*argv: str) -> int:
    return main(["score", *argv])


def test_scores_an_extract_and_prints_the_summary(extract, tmp_path, capsys):
    out = tmp_path / "out"
    code = _score(
        *("--input", str(extract), "--output", str(out)),
        *("--entry-script", str(SCRIPTS / "echo.py"), "--workers", "2"),
        *("--", "--scale", "5"),
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.startswith("scoring run succeeded")
    assert "mini-batches  4 total, 4 succeeded, 0 failed" in printed
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert (predictions["Score"] == predictions["Value"] * 5).all()  # args after -- arrived
    assert json.loads((out / "summary.json").read_text())["program_arguments"] == [
        "--scale",
        "5",
    ]


def test_models_and_extra_arguments_reach_the_script(tmp_path):
    write_files(tmp_path / "in", ["a.txt"])
    (tmp_path / "models").mkdir()
    code = _score(
        *("--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")),
        *("--entry-script", str(SCRIPTS / "show_args.py"), "--models", str(tmp_path / "models")),
        *("--", "--flag", "x"),
    )
    assert code == 0
    rows = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert rows.loc[0, "argv"] == f"--models {tmp_path / 'models'} --flag x"


def test_a_threshold_failure_exits_1_and_names_it(extract, tmp_path, capsys):
    code = _score(
        *("--input", str(extract), "--output", str(tmp_path / "out")),
        *("--entry-script", str(SCRIPTS / "raise_for_partition.py")),
        *("--mini-batch-error-threshold", "1", "--max-retries", "0", "--summary-only"),
        *("--", "--fail-device", "dev-000"),
    )
    printed = capsys.readouterr().out
    assert code == 1
    assert "scoring run FAILED: mini_batch_error_threshold exceeded: 2 failed mini-batches > 1" in (
        printed
    )
    assert "worst offenders:" in printed and "ValueError: no model for device dev-000" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "{tmp}/missing"], "--input {tmp}/missing: no such file or folder"),
        (["--entry-script", "{tmp}/nope.py"], "--entry-script {tmp}/nope.py: no such file"),
        (
            ["--entry-script", "{scripts}/no_run.py"],
            "--entry-script {scripts}/no_run.py: defines no run",
        ),
        (["--mini-batch-size", "lots"], "--mini-batch-size 'lots'"),
        (["--workers", "0"], "--workers 0: must be at least 1"),
        (["--models", "{tmp}/no-models"], "--models {tmp}/no-models: no such folder"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(extract, tmp_path, capsys, argv, message):
    fill = {"tmp": str(tmp_path), "scripts": str(SCRIPTS)}
    argv = [part.format(**fill) for part in argv]
    defaults = {
        "--input": str(extract),
        "--output": str(tmp_path / "out"),
        "--entry-script": str(SCRIPTS / "echo.py"),
    }
    for flag, value in defaults.items():
        if flag not in argv:
            argv += [flag, value]
    code = _score(*argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message.format(**fill) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_refused_input_still_leaves_a_summary_and_the_last_good_predictions(tmp_path, capsys):
    good, bad, out = tmp_path / "good.csv", tmp_path / "bad.csv", tmp_path / "out"
    rows = {"TS": ["2024-01-01 00:05"], "Device": ["d1"], "Sensor": ["s"], "Value": [1.0]}
    pd.DataFrame(rows).to_csv(good, index=False)
    pd.DataFrame(rows).drop(columns="Value").to_csv(bad, index=False)
    script = ("--entry-script", str(SCRIPTS / "echo.py"), "--output", str(out))
    assert _score("--input", str(good), *script) == 0
    published = (out / "predictions.parquet").read_bytes()
    capsys.readouterr()

    assert _score("--input", str(bad), *script) == 2
    err = capsys.readouterr().err
    assert "bad.csv: missing column(s) Value" in err and len(err.splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["input"] == str(bad)
    assert summary["failure"].startswith("input refused: ") and "Value" in summary["failure"]
    assert summary["output"]["published"] is False
    assert summary["output"]["kept_predictions"]["file"].endswith("predictions.parquet")
    assert (out / "predictions.parquet").read_bytes() == published


def test_the_default_entry_script_needs_models(extract, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .batchscore/models here: train has not run
    code = _score("--input", str(extract), "--output", str(tmp_path / "out"))
    assert code == 2
    err = capsys.readouterr().err
    assert "--models .batchscore/models: no such folder (`batchscore train` writes it)" in err


def test_append_rows_and_summary_only_exclude_each_other(extract, tmp_path, capsys):
    code = _score(
        *("--input", str(extract), "--output", str(tmp_path / "o")),
        *("--entry-script", str(SCRIPTS / "echo.py"), "--append-rows", "--summary-only"),
    )
    assert code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_runs_as_a_real_subprocess(extract, tmp_path):
    out = tmp_path / "out"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "batchscore", "--log-level", "WARNING", "score"]
        + ["--input", str(extract), "--output", str(out), "--workers", "2"]
        + ["--entry-script", str(SCRIPTS / "echo.py"), "--output-format", "csv"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "scoring run succeeded" in completed.stdout
    assert len(pd.read_csv(out / "predictions.csv")) == 12
    assert json.loads((out / "summary.json").read_text())["status"] == "succeeded"


def _empty_window_extract(tmp_path: Path) -> Path:
    """An extract of a window without readings, made by aggregate and extract themselves."""
    readings = tmp_path / "readings.csv"
    readings.write_text("TS,Device,Sensor,Value\n2024-01-01T00:01:00,dev-000,temp,1.0\n")
    url = f"sqlite:///{tmp_path / 'sensors.db'}"
    assert main(["aggregate", "--input", str(readings), "--db", url]) == 0
    extract = tmp_path / "empty-extract"
    argv = ["extract", "--db", url, "--end", "2023-06-01T00:00:00", "--output", str(extract)]
    assert main(argv) == 0
    return extract


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_an_empty_window_exits_3_with_its_status_and_the_declared_columns(
    tmp_path, capsys, output_format
):
    extract = _empty_window_extract(tmp_path)
    models = write_model_store(tmp_path / "models", devices=1, sensors=("temp",))
    out = tmp_path / "out"
    code = _score(
        *("--input", str(extract), "--models", str(models), "--output", str(out)),
        *("--workers", "1", "--output-format", output_format),
    )
    assert code == EXIT_EMPTY == 3
    assert "EMPTY WINDOW" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "empty_window" and summary["items"]["in"] == 0
    if output_format == "parquet":
        table = pq.read_table(out / "predictions.parquet")
        assert table.schema.equals(PREDICTION_SCHEMA) and table.num_rows == 0
    else:
        header = (out / "predictions.csv").read_text().splitlines()
        assert header == [",".join(f'"{name}"' for name in PREDICTION_COLUMNS)]


def test_exit_code_3_is_documented_in_help(capsys):
    assert main(["score", "--help"]) == 0
    assert "3    empty window" in capsys.readouterr().out


def _project(folder: Path, stack: str, config: dict[str, object]) -> Path:
    """A Pulumi project folder: the repository's Pulumi.yaml and a stack file with ``config``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    lines = [f"  batchscore:{key}: {value}" for key, value in config.items()]
    (folder / f"Pulumi.{stack}.yaml").write_text("config:\n" + "\n".join(lines) + "\n")
    return folder


def test_stack_takes_every_knob_from_the_stacks_config_and_flags_win(
    extract, tmp_path, monkeypatch, capsys
):
    project = _project(
        tmp_path / "project",
        "lab",
        {
            "scoringInstanceCount": 1,
            "maxConcurrencyPerInstance": 3,
            "errorThreshold": 7,
            "miniBatchErrorThreshold": 0,
            "maxRetries": 0,
            "miniBatchTimeoutSeconds": 45,
            "scoringLoggingLevel": "WARNING",
            "appendRows": "false",
        },
    )
    monkeypatch.chdir(project)
    out = tmp_path / "out"
    code = _score(
        *("--input", str(extract), "--output", str(out), "--stack", "lab"),
        *("--entry-script", str(SCRIPTS / "echo.py"), "--max-retries", "1"),
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["workers"]["count"] == 3  # 1 instance x 3 per instance (4 mini-batches)
    assert summary["thresholds"]["error_threshold"]["value"] == 7
    assert summary["thresholds"]["mini_batch_error_threshold"]["value"] == 0
    assert summary["settings"] == {
        "mini_batch_size": "10",
        "timeout_seconds": 45.0,
        "max_retries": 1,  # the flag wins over the stack's 0
    }
    assert summary["output"]["mode"] == "summary_only"


def test_stack_dev_gives_the_pipelines_thresholds(extract, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    argv = ["--input", str(extract), "--output", str(out), "--stack", "dev"]
    assert _score(*argv, "--entry-script", str(SCRIPTS / "echo.py")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["thresholds"]["mini_batch_error_threshold"]["value"] == 5
    assert summary["thresholds"]["error_threshold"]["value"] == -1
    assert summary["workers"]["count"] == 2 and summary["output"]["mode"] == "append_rows"
    assert summary["settings"] == {
        "mini_batch_size": "10",
        "timeout_seconds": 300.0,
        "max_retries": 2,
    }


def test_an_unknown_stack_is_one_line_and_exit_2(extract, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    argv = ["--input", str(extract), "--output", str(tmp_path / "out"), "--stack", "nope"]
    assert _score(*argv, "--entry-script", str(SCRIPTS / "echo.py")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: stack 'nope': no stack file Pulumi.nope.yaml") and (
        len(err.splitlines()) == 1
    )


def test_the_score_command_starts_the_fork_server_before_importing_pandas() -> None:
    """The fork server imports pandas for the workers while the command imports it for
    itself; a module-level pandas or pyarrow import on the way to ``run`` would put the two
    back in a row (about a fifth of a small run's wall time)."""
    assert loaded_by_import("batchscore.commands.score", ("pandas", "pyarrow", "numpy")) == []


def test_the_fork_server_ends_with_the_command_and_a_later_run_starts_a_new_one(
    extract, tmp_path
) -> None:
    """Left to notice the command's exit, the server would tear down its interpreter (pandas
    loaded) after the command, holding the command's stdout and stderr open meanwhile."""
    from multiprocessing import forkserver

    from scoring.runner.processes import start_method

    if start_method() != "forkserver":
        pytest.skip("no fork server on this platform")
    servers = []
    for run in ("first", "second"):
        seen = []
        real_stop = forkserver._forkserver._stop

        def stop_and_note(real_stop=real_stop, seen=seen) -> None:
            seen.append(forkserver._forkserver._forkserver_pid)
            real_stop()

        forkserver._forkserver._stop = stop_and_note
        try:
            argv = ["--input", str(extract), "--output", str(tmp_path / run)]
            assert _score(*argv, "--entry-script", str(SCRIPTS / "echo.py")) == 0
        finally:
            del forkserver._forkserver._stop
        assert len(seen) == 1 and seen[0] is not None
        assert forkserver._forkserver._forkserver_pid is None
        with pytest.raises(ProcessLookupError):  # gone and reaped, not left as a zombie
            os.kill(seen[0], 0)
        servers.append(seen[0])
    assert servers[0] != servers[1]
