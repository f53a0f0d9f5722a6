"""The Azure ML v2 components of the scoring pipeline (azure-ai-ml; never the v1 SDK).

* ``batchscore_extract`` (command): ``python -m scoring.steps.extract`` of one window from
  Azure SQL into an ``mltable`` folder, shards of whole pairs (``Shard=``) or a folder per pair
  (``Device=/Sensor=``), as ``scoringPartitioning`` says.
* ``batchscore_score`` (parallel, built with ``parallel_run_function``): the entry script
  ``steps/score.py`` once per partition, every knob from :class:`PipelineSettings`.
* ``batchscore_publish`` (command): the scored rows of one run into
  ``window=<end>/predictions.parquet`` under the predictions datastore (see ``pipeline.py``
  for why a publish step and not an output-path template).

and the generic parallel component (any entry script over a folder of files).

Every component gets a version derived from its content (see :func:`content_version`), so
the same definition is registered once and any change makes a new version.

Every step runs the runtime package ``scoring`` the same way (``python -m scoring.steps.<step>``
or the entry script): the image is built from this same ``scoring/`` folder (its digest is
part of every version), so the package is the image's; ``code`` uploads the same folder
(nothing but the runtime: :mod:`scoring.code_snapshot`) so the entry script and the job's
snapshot match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output
from azure.ai.ml.entities import CommandComponent, Component, Environment
from azure.ai.ml.parallel import RunFunction, parallel_run_function

import scoring
from components.config.pipeline import PipelineSettings, PipelineTarget
from scoring import code_snapshot
from scoring.partitioning import LAYOUT_KEYS
from scoring.steps import ENTRY_SCRIPT_IN_SNAPSHOT

SCORING_DIR = Path(scoring.__file__).resolve().parent  # the code snapshot: the runtime package

EXTRACT_NAME = "batchscore_extract"
SCORE_NAME = "batchscore_score"
PUBLISH_NAME = "batchscore_publish"
GENERIC_NAME = "batchscore_batch_inference"

INPUT_TYPES = ("mltable", "uri_folder")
MODEL_INPUT_TYPES = ("uri_file", "uri_folder", "custom_model", "mlflow_model")


def environment(target: PipelineTarget) -> Environment:
    """The scoring image, by digest, as an inline (anonymous) environment."""
    return Environment(image=target.image)


def extract_component(
    settings: PipelineSettings, target: PipelineTarget, *, code_dir: Path = SCORING_DIR
) -> CommandComponent:
    """Readings with TS in (trigger_time - lookback, trigger_time] as Parquet + MLTable."""
    return CommandComponent(
        name=EXTRACT_NAME,
        display_name="Extract one window of readings",
        description="Reads dbo.SensorReadings for (trigger_time - lookback, trigger_time] and "
        "writes Parquet shards of whole pairs (Shard=) or one folder per pair "
        "(Device=/Sensor=), as scoringPartitioning says, with an MLTable beside it.",
        inputs={
            "trigger_time": Input(
                type="string", description="window end: ISO 8601 or 'now' (the schedule's time)"
            ),
            "lookback_minutes": Input(
                type="integer", default=settings.lookback_minutes, description="window length"
            ),
            "db_url": Input(type="string", description="SQLAlchemy URL without credentials"),
            "time_zone": Input(
                type="string",
                default=settings.schedule_time_zone,
                description="zone of a trigger time without offset (the schedule's)",
            ),
        },
        outputs={"readings": Output(type="mltable")},
        # Single quotes: the URL holds '&' and '?', and the shell must not interpret them.
        command=(
            "python -m scoring.steps.extract --db '${{inputs.db_url}}' "
            "--end '${{inputs.trigger_time}}' --time-zone '${{inputs.time_zone}}' "
            "--lookback-minutes ${{inputs.lookback_minutes}} "
            f"--partitioning {settings.partitioning} --shard-rows {settings.shard_rows} "
            "--output ${{outputs.readings}}"
        ),
        code=str(code_dir),
        environment=environment(target),
        is_deterministic=False,  # a scheduled run must read the database, never reuse
    )


def score_component(
    settings: PipelineSettings, target: PipelineTarget, *, code_dir: Path = SCORING_DIR
):
    """The parallel scoring step: one mini-batch per partition of the extract, a shard of
    whole pairs (``partition_keys: [Shard]``, the default) or one (Device, Sensor) pair.

    Tabular partitioned input needs ``mode: direct`` (``run()`` then gets a DataFrame; with a
    mount it gets file paths): learn.microsoft.com/azure/machine-learning/
    how-to-use-parallel-job-in-pipeline ("Declare the inputs"), and the azureml-examples
    notebook sdk/python/jobs/parallel/1a_oj_sales_prediction. The step runs without
    ``append_row_to`` (summary only): the entry script writes each mini-batch's predictions as a
    typed Parquet part into ``outputs.scored`` itself (see :mod:`scoring.data.scored_parts` for
    why), and ``run()`` returns one item per input row for the driver's count.

    Returns the ``Parallel`` builder of ``parallel_run_function``; its ``.component`` is the
    ``ParallelComponent`` that gets registered.
    """
    arguments = f"--models ${{{{inputs.models}}}} --log-level {settings.logging_level}"
    outputs = {}
    if settings.append_rows:
        outputs["scored"] = Output(type="uri_folder", mode="rw_mount")
        arguments += " --predictions-dir ${{outputs.scored}}"
    return parallel_run_function(
        name=SCORE_NAME,
        display_name=f"Score every partition ({settings.partitioning})",
        description="Runs steps/score.py once per partition of the extract (a shard of whole "
        "pairs, or one Device/Sensor pair) with each pair's model; each partition's "
        "predictions land as a Parquet part in outputs.scored.",
        inputs={
            "readings": Input(type="mltable", mode="direct", description="extract output"),
            "models": Input(type="uri_folder", description="model store"),
        },
        outputs=outputs,
        input_data="${{inputs.readings}}",
        partition_keys=list(LAYOUT_KEYS[settings.partitioning]),
        **settings.parallel_job_knobs(),
        task=RunFunction(
            code=str(code_dir),
            entry_script=ENTRY_SCRIPT_IN_SNAPSHOT,
            program_arguments=arguments,
            environment=environment(target),
        ),
        is_deterministic=False,
    )


def publish_component(target: PipelineTarget, *, code_dir: Path = SCORING_DIR) -> CommandComponent:
    """Scored parts of one run into ``window=<end>/predictions.parquet`` (replacing), checked
    against the extract's row count, with each pair's drift against its model's baseline
    (``drift.parquet``, read from the same model store the score step used) and the run's
    summary beside it and as an output."""
    return CommandComponent(
        name=PUBLISH_NAME,
        display_name="Publish the window's predictions",
        description="Reads the score step's Parquet parts and failure records, checks them "
        "against the extract and writes window=<end>/predictions.parquet, drift.parquet and "
        "summary.json, replacing a previous run of the same window.",
        inputs={
            "scored": Input(type="uri_folder", description="the score step's output"),
            "extract": Input(type="mltable", description="the extract step's output"),
            "models": Input(type="uri_folder", description="model store (the baselines)"),
        },
        outputs={
            "published": Output(type="uri_folder", mode="rw_mount"),
            "summary": Output(type="uri_folder", description="this run's summary.json"),
        },
        command=(
            "python -m scoring.steps.publish --scored ${{inputs.scored}} "
            "--extract ${{inputs.extract}} --out ${{outputs.published}} "
            "--summary-out ${{outputs.summary}} --models ${{inputs.models}}"
        ),
        code=str(code_dir),
        environment=environment(target),
        is_deterministic=False,
    )


def generic_parallel_component(
    settings: PipelineSettings,
    target: PipelineTarget,
    *,
    entry_script: Path,
    input_type: str,
    mini_batch_size: str | None = None,
    program_arguments: str = "",
    model_input_type: str | None = None,
    model_argument: str = "--model",
):
    """A parallel component for any entry script: code = the script's folder.

    ``uri_folder`` input: mini-batches of ``mini_batch_size`` files (default the
    ``miniBatchSize`` setting); ``mltable`` input: partitioned by Device and Sensor.
    ``model_input_type`` (e.g. ``uri_file``) adds an input ``model`` handed to the script
    as ``<model_argument> <local path>``, so the model travels as data, not inside the code.
    """
    if input_type not in INPUT_TYPES:
        raise ValueError(
            f"--input-type must be one of {', '.join(INPUT_TYPES)} (got {input_type!r})"
        )
    script = Path(entry_script)
    if not script.is_file():
        raise FileNotFoundError(f"--entry-script {script}: no such file")
    by_partition = input_type == "mltable"
    extra: dict[str, Any] = (
        {"partition_keys": ["Device", "Sensor"]}
        if by_partition
        else {"mini_batch_size": str(mini_batch_size or settings.mini_batch_size)}
    )
    if not by_partition:
        # Validate through the settings rules so a bad size names the flag's meaning.
        PipelineSettings(**{**_fields(settings), "mini_batch_size": extra["mini_batch_size"]})
    mode = "direct" if by_partition else None  # tabular partitioned input: see score_component
    inputs = {"data": Input(type=input_type, mode=mode, description="data to score")}
    if model_input_type:
        if model_input_type not in MODEL_INPUT_TYPES:
            raise ValueError(
                f"--model-input-type must be one of {', '.join(MODEL_INPUT_TYPES)} "
                f"(got {model_input_type!r})"
            )
        inputs["model"] = Input(type=model_input_type, description="the script's model")
        model_binding = f"{model_argument} ${{{{inputs.model}}}}"
        program_arguments = f"{program_arguments} {model_binding}".strip()
    return parallel_run_function(
        name=GENERIC_NAME,
        display_name=f"Batch inference with {script.name}",
        inputs=inputs,
        outputs={"predictions": Output(type="uri_folder")} if settings.append_rows else {},
        input_data="${{inputs.data}}",
        **extra,
        **settings.parallel_job_knobs(),
        task=RunFunction(
            code=str(script.resolve().parent),
            entry_script=script.name,
            program_arguments=program_arguments or None,
            environment=environment(target),
            append_row_to="${{outputs.predictions}}" if settings.append_rows else None,
        ),
        is_deterministic=False,
    )


def component_of(item: Any) -> Component:
    """The registrable component of a component or of a ``parallel_run_function`` builder."""
    return item if isinstance(item, Component) else item.component


#: the code folder's content hash (one implementation with the Pulumi provider's)
hash_code_folder = code_snapshot.hash_folder


def content_version(component: Component, code_hash: str) -> str:
    """A version that changes exactly when the component's definition or code changes.

    Hashes the component as it would be submitted (the SDK's own ``_to_dict``), without
    its version and with the local code path replaced by ``code_hash``; the image digest
    and every setting are part of that dict. Prefixed with ``v`` so YAML keeps it a string.
    """
    spec = component._to_dict()
    spec.pop("version", None)
    spec = _replace_code(spec, code_hash)
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return "v" + hashlib.sha256(text.encode()).hexdigest()[:16]


def set_versions(items: Iterable[Any], code_hashes: dict[str, str]) -> None:
    """Give every component its content version; ``code_hashes`` maps name -> code hash."""
    for item in items:
        component = component_of(item)
        component.version = None
        component.version = content_version(component, code_hashes[component.name])


def _replace_code(value: Any, code_hash: str) -> Any:
    """``value`` with every ``code`` (a machine-local path) replaced by the code's hash."""
    if isinstance(value, dict):
        return {
            key: code_hash if key == "code" else _replace_code(item, code_hash)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_replace_code(v, code_hash) for v in value]
    return value


def _fields(settings: PipelineSettings) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(settings)
