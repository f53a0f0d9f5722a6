"""The training pipeline's Azure ML v2 definitions: extract -> train (parallel) -> promote.

* **extract**: the scoring pipeline's own ``batchscore_extract`` component, always in shards of
  whole pairs, over the training window (``trainLookbackDays`` before the trigger time);
* **train** (``batchscore_train``, parallel, one shard per mini-batch): the entry script
  ``steps/train.py`` (:mod:`scoring.steps.train`) fits every pair with the fleet code of
  ``batchscore train``, holding out each pair's most recent readings, and measures the
  candidate's and the current model's flag rate on them; the current store comes in read-only;
* **promote** (``batchscore_promote``, command): ``python -m scoring.steps.promote`` gates each
  candidate and writes the store's next generation into the ``models`` datastore (mounted
  read-write: the same ``store/`` folder scoring reads), with the training summary as an
  output and as one Application Insights event.

The parallel knobs (concurrency, thresholds, retries, timeout, logging) are the scoring job's
(:class:`PipelineSettings`); the node count is ``trainInstanceCount``. Every step runs as the
cluster's managed identity, is non-deterministic, and the pipeline forces a re-run, as the
scoring pipeline does (:mod:`components.aml.pipeline`).
"""

# No `from __future__ import annotations`: dsl.pipeline reads the real annotation objects.
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output, dsl
from azure.ai.ml.entities import CommandComponent, CronTrigger, JobSchedule, PipelineJob
from azure.ai.ml.parallel import RunFunction, parallel_run_function

from components.aml import components as comps
from components.aml.pipeline import (
    TRIGGER_TIME_MACRO,
    name_step,
    publish_environment_variables,
    run_as_cluster_identity,
    step_environment_variables,
)
from components.config.pipeline import PipelineSettings, PipelineTarget
from components.config.training import TrainingSettings
from scoring.partitioning import LAYOUT_KEYS, SHARD_LAYOUT

TRAIN_NAME = "batchscore_train"
PROMOTE_NAME = "batchscore_promote"
PIPELINE_NAME = "batchscore_training"
EXPERIMENT_NAME = "batchscore-training"
#: the training entry script inside the code snapshot (the scoring/ folder)
TRAIN_SCRIPT_IN_SNAPSHOT = "steps/train.py"


@dataclass
class TrainingComponents:
    """The versioned components of the training pipeline."""

    extract: CommandComponent
    train: Any  # the Parallel builder from parallel_run_function
    promote: CommandComponent

    def all(self) -> list[Any]:
        return [self.extract, self.train, self.promote]


def train_component(
    settings: PipelineSettings,
    training: TrainingSettings,
    target: PipelineTarget,
    *,
    code_dir: Path = comps.SCORING_DIR,
):
    """The parallel training step: ``steps/train.py`` once per shard of the training window."""
    arguments = (
        "--models ${{inputs.models}} --candidates ${{outputs.candidates}} "
        f"--holdout-percent {training.holdout_percent} --retrain {training.retrain}"
    )
    inputs = {
        # Tabular partitioned input needs mode direct, as the score step's (components.py).
        "readings": Input(type="mltable", mode="direct", description="the training window"),
        "models": Input(type="uri_folder", description="the current model store (read only)"),
    }
    if training.retrain == "needed":
        inputs["runs"] = Input(type="uri_folder", description="scoring runs (window=*/)")
        arguments += " --runs ${{inputs.runs}}"
    knobs = settings.parallel_job_knobs()
    knobs["instance_count"] = training.instance_count
    return parallel_run_function(
        name=TRAIN_NAME,
        display_name="Train every pair of the window",
        description="Runs steps/train.py once per shard of the training window: fits each "
        "pair on its older readings and measures flag rates on the held-out recent ones.",
        inputs=inputs,
        outputs={"candidates": Output(type="uri_folder", mode="rw_mount")},
        input_data="${{inputs.readings}}",
        partition_keys=list(LAYOUT_KEYS[SHARD_LAYOUT]),
        **knobs,
        task=RunFunction(
            code=str(code_dir),
            entry_script=TRAIN_SCRIPT_IN_SNAPSHOT,
            program_arguments=f"{arguments} --log-level {settings.logging_level}",
            environment=comps.environment(target),
        ),
        is_deterministic=False,
    )


def promote_component(
    training: TrainingSettings, target: PipelineTarget, *, code_dir: Path = comps.SCORING_DIR
) -> CommandComponent:
    """The gate and the next generation of the store, with the training summary."""
    return CommandComponent(
        name=PROMOTE_NAME,
        display_name="Promote the candidates that pass the gate",
        description="Checks every candidate (file, probes, finite parameters, rows, flag rate "
        "against the current model) and writes the store's next generation and summary.json.",
        inputs={"candidates": Input(type="uri_folder", description="the train step's output")},
        outputs={
            "models": Output(type="uri_folder", mode="rw_mount", description="the model store"),
            "summary": Output(type="uri_folder", description="this run's training summary.json"),
        },
        command=(
            "python -m scoring.steps.promote --candidates ${{inputs.candidates}} "
            f"--models ${{{{outputs.models}}}} --keep {training.generations_to_keep} "
            f"--min-rows {training.gate_min_rows} "
            f"--max-flag-rate-delta-percent {training.gate_max_flag_rate_delta_percent} "
            f"--max-rejected-percent {training.alert_rejected_percent} "
            "--summary-out ${{outputs.summary}}"
        ),
        code=str(code_dir),
        environment=comps.environment(target),
        is_deterministic=False,
    )


def build_training_components(
    settings: PipelineSettings,
    training: TrainingSettings,
    target: PipelineTarget,
    *,
    code_dir: Path = comps.SCORING_DIR,
    code_hash: str | None = None,
    version: str | None = None,
) -> TrainingComponents:
    """The three components with content versions (or ``version`` for all, e.g. snapshots)."""
    shards = replace(settings, partitioning=SHARD_LAYOUT)  # training always reads shards
    built = TrainingComponents(
        extract=comps.extract_component(shards, target, code_dir=code_dir),
        train=train_component(settings, training, target, code_dir=code_dir),
        promote=promote_component(training, target, code_dir=code_dir),
    )
    if version is not None:
        for item in built.all():
            comps.component_of(item).version = version
    else:
        digest = code_hash or comps.hash_code_folder(code_dir)
        comps.set_versions(built.all(), {comps.component_of(c).name: digest for c in built.all()})
    return built


def training_pipeline_job(
    settings: PipelineSettings,
    training: TrainingSettings,
    target: PipelineTarget,
    built: TrainingComponents,
    *,
    trigger_time: str = TRIGGER_TIME_MACRO,
) -> PipelineJob:
    """The pipeline job around ``built``; ``trigger_time`` is the macro for schedules."""
    env_vars = step_environment_variables(target)
    needs_runs = training.retrain == "needed"

    @dsl.pipeline(
        name=PIPELINE_NAME,
        display_name="Retrain the models and promote those that pass the gate",
        description="extract (training window) -> train (parallel, per pair) -> promote",
        default_compute=target.compute,
    )
    def training_run(trigger_time: str, models: Input, runs: Input = None):  # noqa: ANN202, RUF013
        extract = built.extract(
            trigger_time=trigger_time,
            lookback_minutes=training.lookback_minutes,
            db_url=target.sql_url(),
        )
        name_step(extract, "extract")
        run_as_cluster_identity(extract, env_vars)
        step_inputs = {"readings": extract.outputs.readings, "models": models}
        if needs_runs:
            step_inputs["runs"] = runs
        train = built.train(**step_inputs)
        name_step(train, "train")
        run_as_cluster_identity(train, env_vars)
        promote = built.promote(candidates=train.outputs.candidates)
        name_step(promote, "promote")  # `pipeline run --pipeline training` finds it by name
        run_as_cluster_identity(promote, publish_environment_variables(target))
        return {"models": promote.outputs.models, "summary": promote.outputs.summary}

    inputs = {"models": Input(type="uri_folder", path=target.models_uri(), mode="ro_mount")}
    if needs_runs:
        inputs["runs"] = Input(type="uri_folder", path=target.predictions_uri(), mode="ro_mount")
    job = training_run(trigger_time=trigger_time, **inputs)
    job.experiment_name = EXPERIMENT_NAME
    job.settings.force_rerun = True
    job.settings.continue_on_step_failure = False
    job.outputs.models.path = target.models_uri()
    job.outputs.models.mode = "rw_mount"
    return job


def training_schedule(
    name: str, settings: PipelineSettings, training: TrainingSettings, job: PipelineJob
) -> JobSchedule:
    """The training pipeline's cron schedule (in the scoring schedule's time zone)."""
    return JobSchedule(
        name=name,
        display_name="Scheduled retraining of the per-pair models",
        description=f"Runs the training pipeline at '{training.cron}' "
        f"({settings.schedule_time_zone}); managed by Pulumi (project batchscore).",
        trigger=CronTrigger(expression=training.cron, time_zone=settings.schedule_time_zone),
        create_job=job,
        tags={"managed-by": "pulumi", "project": "batchscore"},
        is_enabled=training.enabled,
    )


__all__ = [
    "TrainingComponents",
    "build_training_components",
    "training_pipeline_job",
    "training_schedule",
]
