"""TrainingPipeline: the registered Azure ML training components and their schedule, as one
component around the dynamic resource of :mod:`components.providers.training_pipeline`.

Beside the scoring pipeline on the same cluster: extract (the training window) -> train
(parallel, per pair) -> promote (the gate, the store's next generation).
``TrainingPipelineProvider`` stays importable from here: stacks know it by this module
(:func:`components.providers.common.pickled_as`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import pulumi

from components.config.training import TrainingSettings
from components.providers.training_pipeline import (
    TrainingPipelineProvider,
    TrainingPipelineResource,
)
from components.scoring_pipeline import ScoringPipelineArgs, pipeline_inputs

__all__ = ["TrainingPipeline", "TrainingPipelineArgs", "TrainingPipelineProvider"]


@dataclass
class TrainingPipelineArgs(ScoringPipelineArgs):
    """What the training pipeline needs: the scoring pipeline's arguments (the same workspace,
    cluster, image, database and datastores; ``settings`` gives the parallel knobs and the
    schedule's time zone) and the ``train*`` settings."""

    training: TrainingSettings = field(default_factory=TrainingSettings)

    @classmethod
    def beside(
        cls, scoring: ScoringPipelineArgs, training: TrainingSettings
    ) -> TrainingPipelineArgs:
        """Where the scoring pipeline runs, with the training settings (the same workspace,
        cluster, image, database and datastores; the schedule named on its own)."""
        shared = {f.name: getattr(scoring, f.name) for f in fields(ScoringPipelineArgs)}
        return cls(**{**shared, "schedule_name": None}, training=training)


class TrainingPipeline(pulumi.ComponentResource):
    """The registered training components and their schedule in one Azure ML workspace.

    Outputs: ``schedule_name``, ``schedule_id``, ``component_versions`` (name -> version).
    """

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:TrainingPipeline", name, None, opts)
        props = {**pipeline_inputs(name, args), "training": args.training.to_mapping()}
        self.pipeline = TrainingPipelineResource(
            f"{name}-schedule", props, pulumi.ResourceOptions(parent=self)
        )
        self.schedule_name = self.pipeline.scheduleName
        self.schedule_id = self.pipeline.scheduleId
        self.component_versions = self.pipeline.componentVersions
        self.register_outputs(
            {
                "scheduleName": self.schedule_name,
                "scheduleId": self.schedule_id,
                "componentVersions": self.component_versions,
            }
        )
