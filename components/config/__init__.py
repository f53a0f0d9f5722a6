"""The stack's configuration, in one home: read once, validated once, one error.

* :mod:`.files`: the one reader of ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml``;
* :mod:`.stack`: :class:`StackConfig`, the infrastructure knobs;
* :mod:`.pipeline`: :class:`PipelineSettings` (the schedule and the parallel job) and
  :class:`PipelineTarget` (where the pipeline runs);
* :mod:`.training`: :class:`TrainingSettings` (the training pipeline: schedule, window, gate,
  generations);
* :mod:`.alerts`: :class:`AlertSettings`, derived from the stack and pipeline settings;
* :mod:`.errors`: :class:`ConfigError`, the one error every part raises.

:class:`StackSettings` is all of it for one stack, with the rules that span the parts (a
scoring run cannot ask for more nodes than the cluster has). Nothing here imports Pulumi at
module level or any Azure SDK: the command line and the tests validate a stack offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from components.config.alerts import AlertSettings
from components.config.errors import ConfigError
from components.config.pipeline import PipelineSettings, PipelineTarget
from components.config.stack import StackConfig
from components.config.training import TrainingSettings

__all__ = [
    "AlertSettings",
    "ConfigError",
    "PipelineSettings",
    "PipelineTarget",
    "StackConfig",
    "StackSettings",
    "TrainingSettings",
]


@dataclass(frozen=True)
class StackSettings:
    """Every setting of one stack: infrastructure, scoring pipeline, alerting."""

    stack: StackConfig
    pipeline: PipelineSettings
    alerts: AlertSettings
    training: TrainingSettings = TrainingSettings()

    @classmethod
    def of(
        cls,
        stack: StackConfig,
        pipeline: PipelineSettings,
        training: TrainingSettings | None = None,
    ) -> StackSettings:
        """The parts checked against each other (every problem at once), alerts derived."""
        training = training or TrainingSettings()
        problems = []
        for key, nodes, what in (
            ("scoringInstanceCount", pipeline.instance_count, "a scoring run"),
            ("trainInstanceCount", training.instance_count, "a training run"),
        ):
            if nodes > stack.cluster_max_nodes:
                problems.append(
                    f"{key}: {nodes} nodes for {what}, but the cluster has at most "
                    f"clusterMaxNodes {stack.cluster_max_nodes}"
                )
        if problems:
            raise ConfigError.listing("stack configuration", problems)
        alerts = replace(
            AlertSettings.from_config(stack, pipeline),
            training_rejected_percent=training.alert_rejected_percent,
        )
        return cls(stack, pipeline, alerts, training)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, stack: str | None = None) -> StackSettings:
        """From ``{configKey: value}`` (typed, or the engine's strings)."""
        return cls.of(
            StackConfig.from_mapping(values, stack=stack),
            PipelineSettings.from_mapping(values),
            TrainingSettings.from_mapping(values),
        )

    @classmethod
    def from_pulumi(cls) -> StackSettings:
        """From the running Pulumi program's config (Pulumi applies the Pulumi.yaml defaults)."""
        return cls.of(
            StackConfig.from_pulumi(),
            PipelineSettings.from_pulumi(),
            TrainingSettings.from_pulumi(),
        )
