"""The digits worked example: any model, file inputs, the same local runner."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from batchscore.cli import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "digits"))

import prepare  # noqa: E402  (the example's own modules, found through the path above)
import score_digits  # noqa: E402

# An RBF SVM reaches about 0.98-0.99 on held-out digits (scikit-learn's own examples
# report ~0.97-0.99); the PNG round trip is lossless (see prepare.to_png_pixels), so the
# only loss is the classifier's. 0.95 leaves room for the split, and still fails on any
# mix-up of files and predictions (which would give ~0.1) or a lossy image path.
ACCURACY_FLOOR = 0.95


def test_png_round_trip_is_lossless():
    import numpy as np

    values = np.arange(17, dtype=np.float64)
    assert (score_digits.from_png_pixels(prepare.to_png_pixels(values)) == values).all()


@pytest.mark.slow
def test_digits_example_end_to_end(tmp_path, capsys):
    code = main(["example", "digits", "--workdir", str(tmp_path), "--mini-batch-size", "64"])
    assert code == 0, capsys.readouterr()
    report = json.loads((tmp_path / "report.json").read_text())
    labels = pd.read_csv(tmp_path / "labels.csv")
    predictions = pd.read_csv(report["predictions"])
    assert report["images"] == len(labels) == len(predictions)
    assert list(predictions.columns) == ["file", "digit"]
    assert not predictions["file"].duplicated().any()
    assert report["accuracy"] >= ACCURACY_FLOOR, report


@pytest.mark.slow
def test_unreadable_image_is_one_failed_item_and_loses_nothing_else(tmp_path):
    from scoring.runner import RunSettings, run_parallel

    example = prepare.prepare(tmp_path)
    (example.images / "digit-broken.png").write_bytes(b"not a png at all")
    summary = run_parallel(
        RunSettings(
            input_path=example.images,
            output_dir=tmp_path / "out",
            entry_script=ROOT / "examples" / "digits" / "score_digits.py",
            program_arguments=["--model", str(example.model)],
            workers=1,
            mini_batch_size="100",
            error_threshold=0,
            show_progress=False,
        )
    )
    images = len(list(example.images.glob("*.png")))
    assert summary.items_in == images
    assert summary.items_failed == 1
    assert summary.status == "failed", "error_threshold 0 must fail on one unreadable image"
    warnings = json.dumps(summary.to_dict())
    assert "digit-broken.png" in warnings, "the reason must name the unreadable file"


def test_the_digits_job_exports_for_azure_ml_with_its_model_as_an_input(tmp_path):
    import yaml
    from azure.ai.ml import load_component

    out = tmp_path / "aml"
    code = main(
        [
            "pipeline",
            "export",
            "--out",
            str(out),
            "--entry-script",
            str(ROOT / "examples" / "digits" / "score_digits.py"),
            "--input-type",
            "uri_folder",
            "--mini-batch-size",
            "32",
            "--model-input",
            "azureml://datastores/models/paths/digits/digits-model.skops",
            "--input-path",
            "azureml://datastores/workspaceblobstore/paths/digits/images/",
        ]
    )
    assert code == 0, "the export (with azure-ai-ml's offline validation) must pass"
    component = load_component(out / "batch_inference.component.yml")
    assert component.type == "parallel"
    assert int(component.mini_batch_size) == 32
    assert component.inputs["data"].type == "uri_folder"
    assert component.inputs["model"].type == "uri_file"
    assert component.task.entry_script == "score_digits.py"
    assert component.task.program_arguments == "--model ${{inputs.model}}"
    job = yaml.safe_load((out / "batch_inference.job.yml").read_text())
    assert job["inputs"]["model"]["path"].endswith("digits-model.skops")
    assert job["jobs"]["infer"]["inputs"]["model"]["path"] == "${{parent.inputs.model}}"


def test_an_unknown_model_input_type_is_bad_usage(tmp_path, capsys):
    code = main(
        [
            "pipeline",
            "export",
            "--out",
            str(tmp_path / "aml"),
            "--entry-script",
            str(ROOT / "examples" / "digits" / "score_digits.py"),
            "--input-type",
            "uri_folder",
            "--model-input",
            "azureml://datastores/models/paths/m.skops",
            "--model-input-type",
            "pickle_jar",
        ]
    )
    assert code == 2
    assert "--model-input-type" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers 0: must be at least 1"),
        (["--mini-batch-size", "lots"], "--mini-batch-size 'lots'"),
        (["--workdir", "{tmp}/file/digits"], "{tmp}/file is a file, not a folder"),
    ],
)
def test_bad_settings_are_refused_before_the_model_is_trained(tmp_path, capsys, flags, message):
    (tmp_path / "file").write_text("x")
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    workdir = ["--workdir", str(tmp_path / "digits")]
    assert main(["example", "digits", *workdir, *flags]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "digits").exists(), "nothing trained, nothing written"


def test_without_its_files_the_example_names_the_fix(tmp_path, monkeypatch, capsys):
    from batchscore.commands import example

    monkeypatch.setattr(example, "EXAMPLES_DIR", tmp_path / "site-packages" / "examples")
    assert main(["example", "digits", "--workdir", str(tmp_path / "digits")]) == 2
    err = capsys.readouterr().err
    assert "come with a clone of the repository" in err and "pip install -e ." in err
    assert not (tmp_path / "digits").exists()
