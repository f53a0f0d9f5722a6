"""`pipeline export`: Azure ML YAML with $schema, loadable and valid offline, and snapshotted."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

with warnings.catch_warnings():  # azure-ai-ml's schemas warn about marshmallow 4 on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from batchscore.aml import export
    from batchscore.cli import main
    from components.config.pipeline import PipelineSettings, PipelineTarget

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOTS = ROOT / "tests" / "snapshots" / "aml"
REFRESH = (
    "batchscore pipeline export --out tests/snapshots/aml --version snapshot && "
    "batchscore pipeline export --out tests/snapshots/aml/generic --version snapshot "
    "--entry-script scoring/steps/score.py --input-type uri_folder"
)
IMAGE = "crdev.azurecr.io/batchscore-scoring@sha256:" + "3c" * 32


def _render_snapshot_set() -> dict[Path, str]:
    """What the refresh commands write, rendered in memory (defaults, placeholders)."""
    settings = PipelineSettings.from_stack(None, ROOT)
    target = PipelineTarget()
    scoring = export.render_scoring(
        settings, target, base_dir=SNAPSHOTS, schedule_name="batchscore-scoring", version="snapshot"
    )
    generic = export.render_generic(
        settings,
        target,
        base_dir=SNAPSHOTS / "generic",
        entry_script=ROOT / "scoring" / "steps" / "score.py",
        input_type="uri_folder",
        version="snapshot",
    )
    files = {SNAPSHOTS / name: text for name, text in scoring.files.items()}
    files.update({SNAPSHOTS / "generic" / name: text for name, text in generic.files.items()})
    return files


def test_snapshots_are_current():
    expected = _render_snapshot_set()
    on_disk = set(SNAPSHOTS.rglob("*.yml"))
    stale = sorted(
        str(p.relative_to(ROOT))
        for p, text in expected.items()
        if not p.is_file() or p.read_text(encoding="utf-8") != text
    )
    extra = sorted(str(p.relative_to(ROOT)) for p in on_disk - set(expected))
    assert not stale and not extra, (
        f"Azure ML YAML snapshots are stale: {stale} (unexpected files: {extra})\n"
        f"Review the change, then refresh from the repository root with:\n  {REFRESH}"
    )


def test_exported_files_have_schema_and_relative_code_and_pass_offline_validation(tmp_path):
    out = tmp_path / "aml"
    code = main(["pipeline", "export", "--out", str(out), "--image", IMAGE, "--compute", "gpu1"])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "extract.component.yml",
        "pipeline.job.yml",
        "publish.component.yml",
        "schedule.yml",
        "score.component.yml",
    ]
    for path in out.iterdir():
        data = yaml.safe_load(path.read_text())
        assert data["$schema"].startswith("https://azuremlschemas.azureedge.net/latest/"), path.name
        assert str(tmp_path) not in path.read_text(), f"machine path in {path.name}"
        code_paths = [data.get("code"), (data.get("task") or {}).get("code")]
        assert not any(p and Path(p).is_absolute() for p in code_paths), path.name
    score = yaml.safe_load((out / "score.component.yml").read_text())
    assert (out / score["task"]["code"] / score["task"]["entry_script"]).is_file()
    assert score["task"]["entry_script"] == "steps/score.py"
    assert score["task"]["environment"]["image"] == IMAGE
    job = yaml.safe_load((out / "pipeline.job.yml").read_text())
    assert job["settings"]["default_compute"] == "azureml:gpu1"
    assert job["jobs"]["score"]["component"] == "./score.component.yml"
    schedule = yaml.safe_load((out / "schedule.yml").read_text())
    assert schedule["create_job"]["job"] == "./pipeline.job.yml"
    assert schedule["create_job"]["inputs"]["trigger_time"] == "${{creation_context.trigger_time}}"


def test_backfill_trigger_time_lands_in_the_standalone_job(tmp_path):
    code = main(
        [
            "pipeline",
            "export",
            "--out",
            str(tmp_path),
            "--trigger-time",
            "2025-03-01T10:00:00Z",
            "--version",
            "1",
            "--no-validate",  # validation is covered above; this checks the input only
        ]
    )
    assert code == 0
    job = yaml.safe_load((tmp_path / "pipeline.job.yml").read_text())
    assert job["inputs"]["trigger_time"] == "2025-03-01T10:00:00Z"
    component = yaml.safe_load((tmp_path / "extract.component.yml").read_text())
    assert component["version"] == "1"


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("score.component.yml", "entry_script: steps/score.py", "entry_script: gone.py", "gone.py"),
        ("score.component.yml", "max_retries: 2", "max_retries: -3", "max_retries"),
        ("score.component.yml", "type: mltable", "type: table", "score.component.yml"),
        ("pipeline.job.yml", "parent.jobs.extract.outputs", "parent.jobs.nope.outputs", "nope"),
        ("schedule.yml", "expression: 0 * * * *", "expression: 0 * *", "scheduleCron"),
        ("extract.component.yml", "${{outputs.readings}}", "${{outputs.gone}}", "outputs.gone"),
    ],
)
def test_validation_catches_broken_files(tmp_path, file, old, new, expected):
    rendered = export.render_scoring(
        PipelineSettings(), PipelineTarget(), base_dir=tmp_path, schedule_name="s", version="1"
    )
    assert old in rendered.files[file]
    rendered.files[file] = rendered.files[file].replace(old, new)
    export.write(rendered, tmp_path)
    with pytest.raises(export.ExportValidationError) as info:
        export.validate_folder(tmp_path, {file: rendered.kinds[file]})
    assert file in str(info.value) and expected in str(info.value)


def test_generic_export_over_a_folder_of_files(tmp_path):
    script_dir = tmp_path / "code"
    script_dir.mkdir()
    (script_dir / "infer.py").write_text(
        "def init():\n    pass\n\ndef run(batch):\n    return batch\n"
    )
    out = tmp_path / "out"
    code = main(
        [
            "pipeline",
            "export",
            "--out",
            str(out),
            "--entry-script",
            str(script_dir / "infer.py"),
            "--input-type",
            "uri_folder",
            "--mini-batch-size",
            "7",
            "--input-path",
            "azureml://datastores/raw/paths/images/",
        ]
    )
    assert code == 0
    component = yaml.safe_load((out / "batch_inference.component.yml").read_text())
    assert component["task"]["code"] == "../code"
    assert component["task"]["entry_script"] == "infer.py"
    assert str(component["mini_batch_size"]) == "7"
    assert component["task"]["append_row_to"] == "${{outputs.predictions}}"
    job = yaml.safe_load((out / "batch_inference.job.yml").read_text())
    assert job["inputs"]["data"]["path"] == "azureml://datastores/raw/paths/images/"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--image", "reg/x:latest"], "by digest"),
        (["--entry-script", "nowhere.py", "--input-type", "uri_folder"], "nowhere.py"),
        (["--entry-script", "scoring/steps/score.py"], "--input-type"),
        (["--input-type", "uri_folder"], "need --entry-script"),
        (["--stack", "no-such-stack"], "Pulumi.no-such-stack.yaml"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path, capsys, argv, expected):
    code = main(["pipeline", "export", "--out", str(tmp_path), *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_bad_mini_batch_size_names_the_setting(tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text("def run(b):\n    return b\n")
    argv = ["--entry-script", str(script), "--input-type", "uri_folder", "--mini-batch-size", "x"]
    assert main(["pipeline", "export", "--out", str(tmp_path / "o"), *argv]) == 2
    assert "miniBatchSize" in capsys.readouterr().err


def _export_process(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    """``batchscore pipeline export`` as a user runs it, with Python's deprecation warnings
    switched on, so a library's warning that reaches the terminal reaches this test."""
    return subprocess.run(
        [sys.executable, "-m", "batchscore", "pipeline", "export", "--stack", "dev",
         "--out", str(tmp_path / "aml"), *flags],
        cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "default"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


PLACEHOLDER_FLAGS = [
    "--image",
    "--compute",
    "--sql-server",
    "--sql-database",
    "--identity-client-id",
]
CLIENT_ID = "11111111-0000-4000-8000-222222222222"
REAL_TARGET = [
    *("--image", IMAGE, "--compute", "cpu-cluster", "--sql-server", "sql-dev"),
    *("--sql-database", "readings", "--identity-client-id", CLIENT_ID),
]


def test_export_warns_by_name_for_every_placeholder_and_nothing_else(tmp_path):
    done = _export_process(tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [
        line.split("WARNING batchscore.commands.pipeline: ")[1].split()[0] for line in lines
    ] == (PLACEHOLDER_FLAGS), (
        done.stderr
    )  # one warning per placeholder, and no experimental-class or marshmallow lines
    assert done.stdout.splitlines()[-1] == (
        "validated 5 file(s) offline with azure-ai-ml: ok, but not deployable until "
        + ", ".join(PLACEHOLDER_FLAGS) + " replace the placeholders"
    )  # fmt: skip


def test_export_with_every_deployment_value_is_quiet_and_ok(tmp_path):
    done = _export_process(tmp_path, *REAL_TARGET)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines()[-1] == "validated 5 file(s) offline with azure-ai-ml: ok"
    assert "PLACEHOLDER" not in "".join(p.read_text() for p in (tmp_path / "aml").iterdir())


def test_the_sdks_own_noise_is_still_there_at_debug(tmp_path):
    done = _export_process(tmp_path, *REAL_TARGET, "--log-level", "DEBUG")
    assert done.returncode == 0, done.stderr
    assert "This is an experimental class" in done.stderr  # what INFO keeps out


@pytest.mark.parametrize("when", ["yesterday", "${{creation_context.trigger_time}}"])
def test_a_trigger_time_the_extract_step_would_refuse_is_refused_here(tmp_path, capsys, when):
    argv = ["pipeline", "export", "--out", str(tmp_path), "--trigger-time", when, "--no-validate"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert repr(when) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pipeline.job.yml").exists(), "nothing written"


def test_every_step_of_the_exported_job_carries_its_step_name(tmp_path):
    assert main(["pipeline", "export", "--out", str(tmp_path), "--no-validate"]) == 0
    job = yaml.safe_load((tmp_path / "pipeline.job.yml").read_text())
    assert {name: step["display_name"] for name, step in job["jobs"].items()} == {
        "extract": "extract",
        "score": "score",
        "publish": "publish",
    }
