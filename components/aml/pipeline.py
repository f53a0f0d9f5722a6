"""The scoring pipeline job: extract -> score (parallel) -> publish.

Inputs: ``trigger_time`` (string: the window end; a schedule passes
``${{creation_context.trigger_time}}``, a run by hand ``now`` or a time) and ``models``
(uri_folder: the model store under ``store/`` of the ``models`` datastore). Outputs:
``predictions`` under the ``predictions`` datastore and ``summary`` (this run's summary.json).

Where the predictions land, and why a publish step
--------------------------------------------------
Azure ML resolves only three expressions in an output *path*: ``${{name}}`` (the step job's
name, new for every run), ``${{output_name}}`` and ``${{default_datastore}}``.
``${{creation_context.trigger_time}}`` is resolved only for *string inputs* of a scheduled
pipeline, never in a path. So no output path template can be "one path per window": with
``${{name}}`` a re-run of a window would land beside the first run and duplicate it.

Chosen: the parallel step writes one Parquet part per mini-batch into a per-job intermediate
output (default datastore), and a small ``publish`` step, which gets the extract's output
(its window as the extract resolved it, and its row count), writes
``window=<end as YYYYMMDDTHHMMSSZ>/predictions.parquet`` under one fixed root
(``azureml://datastores/predictions/paths/scored/``, mounted read-write). A re-run of the
same window (schedule retry or manual backfill) overwrites that one file. With
``appendRows: false`` the parallel step keeps only its summary and there is no publish.

Reuse: every step is ``is_deterministic=False`` and the pipeline sets ``force_rerun``, so a
scheduled run never reuses an earlier run's outputs.
"""

# No `from __future__ import annotations`: dsl.pipeline reads the real annotation objects.
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, dsl
from azure.ai.ml.entities import CommandComponent, ManagedIdentityConfiguration, PipelineJob

from components.aml import components as comps
from components.config.pipeline import PipelineSettings, PipelineTarget
from scoring.telemetry import CONNECTION_STRING_ENV

TRIGGER_TIME_MACRO = "${{creation_context.trigger_time}}"
#: what a job started by hand (not by the schedule) scores: the window ending now
STANDALONE_TRIGGER_TIME = "now"
PIPELINE_NAME = "batchscore_scoring"
EXPERIMENT_NAME = "batchscore-scoring"
#: the steps' names; each node's display name too, so a run's child jobs are found by them
EXTRACT_STEP, SCORE_STEP, PUBLISH_STEP = "extract", "score", "publish"


@dataclass
class ScoringComponents:
    """The versioned components of one deployment (publish is None in summary mode)."""

    extract: CommandComponent
    score: Any  # the Parallel builder from parallel_run_function
    publish: CommandComponent | None

    def all(self) -> list[Any]:
        return [c for c in (self.extract, self.score, self.publish) if c is not None]


def build_components(
    settings: PipelineSettings,
    target: PipelineTarget,
    *,
    code_dir: Path = comps.SCORING_DIR,
    code_hash: str | None = None,
    version: str | None = None,
) -> ScoringComponents:
    """The three components with content versions (or ``version`` for all, e.g. snapshots)."""
    built = ScoringComponents(
        extract=comps.extract_component(settings, target, code_dir=code_dir),
        score=comps.score_component(settings, target, code_dir=code_dir),
        publish=comps.publish_component(target, code_dir=code_dir)
        if settings.append_rows
        else None,
    )
    if version is not None:
        for item in built.all():
            comps.component_of(item).version = version
    else:
        digest = code_hash or comps.hash_code_folder(code_dir)
        comps.set_versions(built.all(), {comps.component_of(c).name: digest for c in built.all()})
    return built


def step_environment_variables(target: PipelineTarget) -> dict[str, str]:
    """Make every SDK in the step (and data access) use the cluster's user-assigned identity."""
    return {
        "AZURE_CLIENT_ID": target.identity_client_id,
        "DEFAULT_IDENTITY_CLIENT_ID": target.identity_client_id,
    }


def publish_environment_variables(target: PipelineTarget) -> dict[str, str]:
    """The publish step's: the identity's, plus where it sends the run's summary
    (:mod:`scoring.telemetry`); only this step sends telemetry."""
    env_vars = step_environment_variables(target)
    if target.telemetry_connection_string:
        env_vars[CONNECTION_STRING_ENV] = target.telemetry_connection_string
    return env_vars


def scoring_pipeline_job(
    settings: PipelineSettings,
    target: PipelineTarget,
    built: ScoringComponents,
    *,
    trigger_time: str = TRIGGER_TIME_MACRO,
) -> PipelineJob:
    """The pipeline job around ``built``; ``trigger_time`` is the macro for schedules."""
    env_vars = step_environment_variables(target)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        display_name="Score the latest window of sensor readings",
        description="extract -> score (parallel, one model per Device/Sensor) -> publish",
        default_compute=target.compute,
    )
    def scoring(trigger_time: str, models: Input):  # noqa: ANN202 (dsl reads annotations)
        extract = built.extract(
            trigger_time=trigger_time,
            lookback_minutes=settings.lookback_minutes,
            db_url=target.sql_url(),
        )
        name_step(extract, EXTRACT_STEP)
        run_as_cluster_identity(extract, env_vars)
        score = built.score(readings=extract.outputs.readings, models=models)
        name_step(score, SCORE_STEP)  # the builder carries the component name otherwise
        run_as_cluster_identity(score, env_vars)
        if built.publish is None:
            return {}
        publish = built.publish(
            scored=score.outputs.scored, extract=extract.outputs.readings, models=models
        )
        name_step(publish, PUBLISH_STEP)
        run_as_cluster_identity(publish, publish_environment_variables(target))
        return {"predictions": publish.outputs.published, "summary": publish.outputs.summary}

    job = scoring(
        trigger_time=trigger_time,
        models=Input(type="uri_folder", path=target.models_uri(), mode="ro_mount"),
    )
    job.experiment_name = EXPERIMENT_NAME
    job.settings.force_rerun = True
    job.settings.continue_on_step_failure = False
    if built.publish is not None:
        job.outputs.predictions.path = target.predictions_uri()
        job.outputs.predictions.mode = "rw_mount"
    return job


def name_step(node: Any, step: str) -> None:
    """The node's name and display name are the step's: a run's child job shows the node's
    display name (else the component's, "Extract one window of readings"), and
    ``batchscore pipeline run`` finds the publish step's summary by it."""
    node.name = step
    node.display_name = step


def run_as_cluster_identity(node: Any, env_vars: dict[str, str]) -> None:
    """Data access and SDKs in the step use the cluster's managed identity, never a user's.

    (A helper, not a loop inside the pipeline function: dsl names each step after the local
    variable that holds it, and a loop variable would rename the last step.)
    """
    node.environment_variables = dict(env_vars)
    node.identity = ManagedIdentityConfiguration()


def generic_pipeline_job(
    settings: PipelineSettings,
    target: PipelineTarget,
    builder: Any,
    *,
    input_type: str,
    input_path: str,
    model_input: tuple[str, str] | None = None,
) -> PipelineJob:
    """A one-step pipeline around a generic parallel component (a parallel job runs only as
    a pipeline step). Its predictions go to the default per-job output path.
    ``model_input`` is (type, path) of the script's model, when the component takes one."""

    @dsl.pipeline(
        name="batchscore_batch_inference",
        display_name="Batch inference",
        default_compute=target.compute,
    )
    def batch_inference(data: Input, model: Input = None):  # noqa: ANN202, RUF013 (dsl reads annotations)
        infer = builder(data=data, model=model) if model_input else builder(data=data)
        infer.name = "infer"
        run_as_cluster_identity(infer, step_environment_variables(target))
        return {"predictions": infer.outputs.predictions} if settings.append_rows else {}

    inputs = {"data": Input(type=input_type, path=input_path, mode="ro_mount")}
    if model_input:
        model_type, model_path = model_input
        inputs["model"] = Input(type=model_type, path=model_path, mode="ro_mount")
    job = batch_inference(**inputs)
    job.settings.force_rerun = True
    return job
