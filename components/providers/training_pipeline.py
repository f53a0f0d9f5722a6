"""The TrainingPipeline component's dynamic provider: registers the training pipeline's Azure ML
components and keeps its JobSchedule in step.

The scoring pipeline's provider with other components around the same machinery
(:class:`~components.providers.scoring_pipeline.ScoringPipelineProvider`): components
registered once per content version, the schedule upserted by name, delete disabling before
deleting, refresh reporting a schedule changed outside Pulumi, credentials built inside every
call (``DefaultAzureCredential``), never taken from inputs or state. What differs: the
components (:mod:`components.aml.training`), the schedule's cron and enabled state (the
``train*`` keys, held in the ``training`` input) and the auto-generated schedule name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN

from components.config.errors import ConfigError
from components.config.training import TrainingSettings
from components.providers.common import pickled_as
from components.providers.scoring_pipeline import (
    INPUT_KEYS as SCORING_INPUT_KEYS,
)
from components.providers.scoring_pipeline import (
    OUTPUT_KEYS,
    SCORING_DIR,
    ScoringPipelineProvider,
    register_and_schedule,
    settings_of,
    target_of,
)

INPUT_KEYS = (*SCORING_INPUT_KEYS, "training")


def training_of(props: Mapping[str, Any]) -> TrainingSettings:
    return TrainingSettings.from_mapping(props.get("training") or {})


@pickled_as("components.training_pipeline")  # re-exported there
class TrainingPipelineProvider(ScoringPipelineProvider):
    """CRUD of the training components and schedule (see the module docstring)."""

    input_keys = INPUT_KEYS

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        news = {"scheduleNamePrefix": "batchscore-training", **news}
        result = super().check(olds, news)
        if UNKNOWN not in str(news.get("training")):
            try:
                training_of(news)
            except ConfigError as exc:
                result.failures.append(dynamic.CheckFailure("training", str(exc)))
        return result

    def _apply(self, props: Mapping[str, Any]) -> dict[str, Any]:
        from components.aml import components as comps
        from components.aml.training import (
            PROMOTE_NAME,
            TRAIN_NAME,
            TrainingComponents,
            build_training_components,
            training_pipeline_job,
            training_schedule,
        )

        settings, training, target = settings_of(props), training_of(props), target_of(props)
        built = build_training_components(
            settings, training, target, code_dir=SCORING_DIR, code_hash=props["codeHash"]
        )

        def schedule_of(registered: Mapping[str, Any]) -> Any:
            from_registry = TrainingComponents(
                extract=registered[comps.EXTRACT_NAME],
                train=registered[TRAIN_NAME],
                promote=registered[PROMOTE_NAME],
            )
            job = training_pipeline_job(settings, training, target, from_registry)
            return training_schedule(props["scheduleName"], settings, training, job)

        return register_and_schedule(props, built.all(), schedule_of, input_keys=INPUT_KEYS)

    def _from_cloud(self, props: Mapping[str, Any], cloud: Mapping[str, Any]) -> dict[str, Any]:
        settings = dict(props.get("settings") or {})
        settings["scheduleTimeZone"] = cloud["timeZone"]
        training = dict(props.get("training") or {})
        training.update(trainCron=cloud["cronExpression"], trainScheduleEnabled=cloud["enabled"])
        return {"settings": settings, "training": training}


class TrainingPipelineResource(dynamic.Resource, module="batchscore", name="TrainingPipeline"):
    """The training schedule as a dynamic resource; declared only by TrainingPipeline."""

    scheduleName: pulumi.Output[str]  # noqa: N815 (dynamic outputs keep their state key)
    scheduleId: pulumi.Output[str]  # noqa: N815
    componentVersions: pulumi.Output[dict]  # noqa: N815
    cronExpression: pulumi.Output[str]  # noqa: N815
    timeZone: pulumi.Output[str]  # noqa: N815
    enabled: pulumi.Output[bool]

    def __init__(
        self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        outputs = {k: None for k in OUTPUT_KEYS}
        super().__init__(TrainingPipelineProvider(), name, {**outputs, **props}, opts)
