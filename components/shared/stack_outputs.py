"""The stack outputs other teams consume: one list, shared by the program, tests and README.

Nothing secret belongs here: names, endpoints, ids and the image reference only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

# output name -> what it is (the README's "Stack outputs" table documents each).
STACK_OUTPUTS: dict[str, str] = {
    "resourceGroupName": "Resource group holding every resource of the stack.",
    "storageAccountName": "Storage account (Entra ID only; no keys or SAS).",
    "rawContainerUrl": "URL of the `raw` container (Event Hubs Capture, Avro).",
    "modelsContainerUrl": "URL of the `models` container (the model store).",
    "predictionsContainerUrl": "URL of the `predictions` container (scoring output).",
    "eventHubsNamespaceFqdn": "Event Hubs namespace host name (`<name>.servicebus.windows.net`).",
    "eventHubName": "Hub the devices send readings to (`sensor-readings`).",
    "sqlServerFqdn": "Azure SQL server host name (Entra authentication only).",
    "sqlDatabaseName": "Database holding `dbo.SensorReadings`.",
    "registryLoginServer": "Container registry login server.",
    "scoringImageRef": "Scoring image by digest (`<login server>/<repo>:<tag>@sha256:...`).",
    "mlWorkspaceName": "Azure ML workspace name.",
    "mlWorkspaceId": "Azure ML workspace resource id.",
    "computeClusterName": "AmlCompute cluster the scoring pipeline runs on.",
    "streamJobName": "Stream Analytics job (deployed stopped; started after the SQL bootstrap).",
    "scoringScheduleName": "Azure ML schedule that triggers scoring runs (cron from config).",
    "trainingScheduleName": "Azure ML schedule that triggers training runs (trainCron).",
}


def export_stack_outputs(values: Mapping[str, Any]) -> None:
    """Export exactly the outputs of STACK_OUTPUTS, or fail naming what is missing or extra."""
    missing = sorted(set(STACK_OUTPUTS) - set(values))
    extra = sorted(set(values) - set(STACK_OUTPUTS))
    if missing or extra:
        raise ValueError(
            f"stack outputs differ from components.shared.stack_outputs.STACK_OUTPUTS: "
            f"missing {missing}, not declared {extra}"
        )
    for name in STACK_OUTPUTS:
        pulumi.export(name, values[name])
