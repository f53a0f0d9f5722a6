"""TrainingPipeline: the registered Azure ML training components and their schedule, as one
component around the dynamic resource of :mod:`components.providers.training_pipeline`.

Beside the scoring pipeline on the same cluster: extract (the training window) -> train
(parallel, per pair) -> promote (the gate, the store's next generation).
``TrainingPipelineProvider`` stays importable from here: stacks know it by this module
(:func:`components.providers.common.pickled_as`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.config.pipeline import PipelineSettings
from components.config.training import TrainingSettings
from components.providers.scoring_pipeline import SCORING_DIR
from components.providers.training_pipeline import (
    TrainingPipelineProvider,
    TrainingPipelineResource,
)
from components.shared.hashing import hash_folder

__all__ = ["TrainingPipeline", "TrainingPipelineArgs", "TrainingPipelineProvider"]


@dataclass
class TrainingPipelineArgs:
    """What the training pipeline needs from the other components (as the scoring pipeline's
    :class:`~components.scoring_pipeline.ScoringPipelineArgs`), and the ``train*`` settings.
    ``settings`` gives the parallel knobs and the schedule's time zone."""

    subscription_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    workspace_name: pulumi.Input[str]
    compute_name: pulumi.Input[str]
    identity_client_id: pulumi.Input[str]
    image: pulumi.Input[str]
    sql_server: pulumi.Input[str]
    sql_database: pulumi.Input[str]
    settings: PipelineSettings
    training: TrainingSettings
    models_datastore: pulumi.Input[str] = "models"
    predictions_datastore: pulumi.Input[str] = "predictions"
    storage_account_name: pulumi.Input[str] | None = None
    schedule_name: str | None = None
    telemetry_connection_string: pulumi.Input[str] = ""


class TrainingPipeline(pulumi.ComponentResource):
    """The registered training components and their schedule in one Azure ML workspace.

    Outputs: ``schedule_name``, ``schedule_id``, ``component_versions`` (name -> version).
    """

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:TrainingPipeline", name, None, opts)
        props: dict[str, Any] = {
            "subscriptionId": args.subscription_id,
            "resourceGroupName": args.resource_group_name,
            "workspaceName": args.workspace_name,
            "scheduleName": args.schedule_name,
            "scheduleNamePrefix": f"{name}-{pulumi.get_stack()}",
            "image": args.image,
            "settings": args.settings.to_mapping(),
            "training": args.training.to_mapping(),
            "codeHash": hash_folder(SCORING_DIR),
            "modelsDatastore": args.models_datastore,
            "predictionsDatastore": args.predictions_datastore,
            "sqlServer": args.sql_server,
            "sqlDatabase": args.sql_database,
            "computeName": args.compute_name,
            "identityClientId": args.identity_client_id,
            "storageAccountName": args.storage_account_name,
            "telemetryConnectionString": args.telemetry_connection_string,
        }
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
