"""ScoringPipeline: the registered Azure ML scoring components and their schedule, as one
component around the dynamic resource of :mod:`components.providers.scoring_pipeline`.

``ScoringPipelineProvider`` stays importable from here: deployed stacks know it by this module
(:func:`components.providers.common.pickled_as`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.config.pipeline import PipelineSettings
from components.providers.scoring_pipeline import (
    SCORING_DIR,
    ScoringPipelineProvider,
    ScoringPipelineResource,
)
from components.shared.hashing import hash_folder

__all__ = [
    "ScoringPipeline",
    "ScoringPipelineArgs",
    "ScoringPipelineProvider",
]


@dataclass
class ScoringPipelineArgs:
    """What the scoring pipeline needs from the other components.

    ``image`` is the scoring image by digest (``ScoringImage.image_ref``);
    ``identity_client_id`` the client id of the cluster's user-assigned identity;
    ``sql_server`` the server's FQDN. ``settings`` come from the stack config
    (:meth:`PipelineSettings.from_pulumi`). ``schedule_name`` None = auto-named.
    ``telemetry_connection_string``: Application Insights, where the publish step sends each
    run's summary (not a credential, see :class:`components.config.pipeline.PipelineTarget`).
    """

    subscription_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    workspace_name: pulumi.Input[str]
    compute_name: pulumi.Input[str]
    identity_client_id: pulumi.Input[str]
    image: pulumi.Input[str]
    sql_server: pulumi.Input[str]
    sql_database: pulumi.Input[str]
    settings: PipelineSettings
    models_datastore: pulumi.Input[str] = "models"
    predictions_datastore: pulumi.Input[str] = "predictions"
    # The workspace's storage account (where component code is uploaded), for error messages.
    storage_account_name: pulumi.Input[str] | None = None
    schedule_name: str | None = None
    telemetry_connection_string: pulumi.Input[str] = ""


def pipeline_inputs(name: str, args: ScoringPipelineArgs) -> dict[str, Any]:
    """The dynamic resource's inputs of a pipeline component named ``name``: where it runs,
    its settings and the content hash of the code it ships (the scoring and the training
    pipeline take the same, the training one adds its own settings)."""
    return {
        "subscriptionId": args.subscription_id,
        "resourceGroupName": args.resource_group_name,
        "workspaceName": args.workspace_name,
        "scheduleName": args.schedule_name,
        "scheduleNamePrefix": f"{name}-{pulumi.get_stack()}",
        "image": args.image,
        "settings": args.settings.to_mapping(),
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


class ScoringPipeline(pulumi.ComponentResource):
    """The registered scoring components and their schedule in one Azure ML workspace.

    Outputs: ``schedule_name``, ``schedule_id``, ``component_versions`` (name -> version).
    """

    def __init__(
        self, name: str, args: ScoringPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:ScoringPipeline", name, None, opts)
        props = pipeline_inputs(name, args)
        self.pipeline = ScoringPipelineResource(
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
