"""The stack outputs other teams consume: one list, shared by the program, tests and README,
and the versioned contract around it.

Nothing secret belongs here: names, endpoints, ids and the image reference only.

The contract is semantic-versioned (:data:`OUTPUTS_CONTRACT_VERSION`, exported as
``outputsContractVersion``): a new output is a minor version; removing, renaming or changing
the shape of one is a major version. Its JSON Schema, ``contracts/stack-outputs.schema.json``,
is generated from this module (:func:`contract_schema`) and each released version is kept in
``contracts/released/``; :mod:`components.offline.outputs_contract` checks the history.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi

OUTPUTS_CONTRACT_VERSION = "1.1.0"
CONTRACT_VERSION_OUTPUT = "outputsContractVersion"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# output name -> what it is (the README's "Stack outputs" table documents each).
STACK_OUTPUTS: dict[str, str] = {
    CONTRACT_VERSION_OUTPUT: "Version of this list (semantic: a major bump removes or reshapes "
    "an output).",
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

_ACCOUNT = r"[a-z0-9]{3,24}"
_BLOB_HOST = _ACCOUNT + r"\.blob\.core\.windows\.net"
_REGISTRY = r"[a-zA-Z0-9]{5,50}\.azurecr\.io"

# The shape of each value (a JSON Schema `pattern`); outputs absent here are non-empty strings.
OUTPUT_PATTERNS: dict[str, str] = {
    CONTRACT_VERSION_OUTPUT: r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$",
    "storageAccountName": f"^{_ACCOUNT}$",
    "rawContainerUrl": f"^https://{_BLOB_HOST}/raw$",
    "modelsContainerUrl": f"^https://{_BLOB_HOST}/models$",
    "predictionsContainerUrl": f"^https://{_BLOB_HOST}/predictions$",
    "eventHubsNamespaceFqdn": r"^[a-zA-Z][a-zA-Z0-9-]{4,48}[a-zA-Z0-9]\.servicebus\.windows\.net$",
    "sqlServerFqdn": r"^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]\.database\.windows\.net$",
    "registryLoginServer": f"^{_REGISTRY}$",
    "scoringImageRef": f"^{_REGISTRY}/[a-z0-9._/-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{{64}}$",
    "mlWorkspaceId": r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/[^/]+$",
}


def major_version(version: str) -> int:
    """The major number of a semantic version ``MAJOR.MINOR.PATCH``."""
    return int(version.split(".", 1)[0])


def contract_schema() -> dict[str, Any]:
    """The JSON Schema of the outputs document (``pulumi stack output --json`` and the
    published ``stack-outputs.json``), as committed in ``contracts/``.

    Every output is required; other properties are allowed, so a consumer validating with
    the schema of version 1.x keeps accepting the outputs of any later 1.y (new outputs
    only). ``outputsContractVersion`` must carry the schema's major version.
    """
    major = major_version(OUTPUTS_CONTRACT_VERSION)
    properties: dict[str, Any] = {}
    for name, description in STACK_OUTPUTS.items():
        prop: dict[str, Any] = {"type": "string", "description": description, "minLength": 1}
        if name == CONTRACT_VERSION_OUTPUT:
            prop["pattern"] = rf"^{major}\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"
        elif name in OUTPUT_PATTERNS:
            prop["pattern"] = OUTPUT_PATTERNS[name]
        properties[name] = prop
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:batchscore:stack-outputs:{OUTPUTS_CONTRACT_VERSION}",
        "title": "batchscore stack outputs",
        "description": "What the batchscore stack hands to other teams: `pulumi stack output "
        "--json`, and the same document published as stack-outputs.json. None is secret.",
        "x-contract-version": OUTPUTS_CONTRACT_VERSION,
        "type": "object",
        "required": list(STACK_OUTPUTS),
        "properties": properties,
        "additionalProperties": True,
    }


def schema_text(schema: Mapping[str, Any]) -> str:
    """The committed form of a schema: stable key order, two-space indent, final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def outputs_document(values: Mapping[str, Any]) -> str:
    """The published ``stack-outputs.json``: every output, keys sorted (a stable blob)."""
    return json.dumps(dict(sorted(values.items())), indent=2) + "\n"


def _complete(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` plus the contract version, or fail naming what is missing or extra."""
    declared = set(STACK_OUTPUTS) - {CONTRACT_VERSION_OUTPUT}
    missing = sorted(declared - set(values))
    extra = sorted(set(values) - declared)
    if missing or extra:
        raise ValueError(
            f"stack outputs differ from components.shared.stack_outputs.STACK_OUTPUTS: "
            f"missing {missing}, not declared {extra}"
        )
    return {CONTRACT_VERSION_OUTPUT: OUTPUTS_CONTRACT_VERSION, **values}


def export_stack_outputs(values: Mapping[str, Any]) -> pulumi.Output[str]:
    """Export exactly the outputs of STACK_OUTPUTS (the contract version added here), or fail
    naming what is missing or extra. Returns the outputs document for publishing."""
    complete = _complete(values)
    for name in STACK_OUTPUTS:
        pulumi.export(name, complete[name])
    return pulumi.Output.all(**complete).apply(outputs_document)
