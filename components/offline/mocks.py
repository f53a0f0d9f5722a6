"""Pulumi mocks that stand in for Azure: plausible, deterministic outputs for every resource.

`OfflineMocks` answers resource registrations and invokes the way the providers would
(ARM ids, host names, identities, a digest for the image), derived only from the stack,
the resource's type, logical name and inputs, so every run gives the same values.
`RecordingMonitor` keeps what the engine would receive: type, logical name, parent,
`protect`, the inputs (camelCase), with secrets and unknowns replaced by markers, and the
explicit dependencies (`depends_on` beyond what the inputs already imply; a component in
`depends_on` stands for all its resources, as the SDK expands it), the names of the
resource hooks bound to it and the inputs whose changes it ignores (`ignore_changes`).
Mocks see which hooks a resource carries; they never run one (the engine calls hooks around
real create/update/delete steps, which mocks do not have).
"""

from __future__ import annotations

import hashlib
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

SUBSCRIPTION_ID = "11111111-1111-4111-8111-111111111111"
TENANT_ID = "22222222-2222-4222-8222-222222222222"
DEPLOYER_OBJECT_ID = "33333333-3333-4333-8333-333333333333"
DEPLOYER_CLIENT_ID = "44444444-4444-4444-8444-444444444444"
OFFLINE_ENTRA_TOKEN = "offline-entra-token"
OFFLINE_ACR_REFRESH_TOKEN = "offline-acr-refresh-token"
SECRET_MARKER = "[secret]"
UNKNOWN_MARKER = "[unknown]"

_NAMESPACE = uuid.UUID("6f1c7a52-0d8e-4c3b-9f3e-6a0b5e4f2d11")
_RG = "/subscriptions/{sub}/resourceGroups/{resourceGroupName}/providers/"

# type token -> (input holding the cloud name, ARM id template over the inputs and `name`)
ARM_TYPES: dict[str, tuple[str, str]] = {
    "azure-native:resources:ResourceGroup": (
        "resourceGroupName",
        "/subscriptions/{sub}/resourceGroups/{name}",
    ),
    "azure-native:operationalinsights:Workspace": (
        "workspaceName",
        _RG + "Microsoft.OperationalInsights/workspaces/{name}",
    ),
    "azure-native:storage:StorageAccount": (
        "accountName",
        _RG + "Microsoft.Storage/storageAccounts/{name}",
    ),
    "azure-native:storage:BlobServiceProperties": (
        "blobServicesName",
        _RG + "Microsoft.Storage/storageAccounts/{accountName}/blobServices/{name}",
    ),
    "azure-native:storage:BlobContainer": (
        "containerName",
        _RG
        + "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers/{name}",
    ),
    "azure-native:eventhub:Namespace": (
        "namespaceName",
        _RG + "Microsoft.EventHub/namespaces/{name}",
    ),
    "azure-native:eventhub:EventHub": (
        "eventHubName",
        _RG + "Microsoft.EventHub/namespaces/{namespaceName}/eventhubs/{name}",
    ),
    "azure-native:eventhub:ConsumerGroup": (
        "consumerGroupName",
        _RG
        + "Microsoft.EventHub/namespaces/{namespaceName}/eventhubs/{eventHubName}"
        + "/consumergroups/{name}",
    ),
    "azure-native:sql:Server": ("serverName", _RG + "Microsoft.Sql/servers/{name}"),
    "azure-native:sql:FirewallRule": (
        "firewallRuleName",
        _RG + "Microsoft.Sql/servers/{serverName}/firewallRules/{name}",
    ),
    "azure-native:sql:Database": (
        "databaseName",
        _RG + "Microsoft.Sql/servers/{serverName}/databases/{name}",
    ),
    "azure-native:streamanalytics:StreamingJob": (
        "jobName",
        _RG + "Microsoft.StreamAnalytics/streamingjobs/{name}",
    ),
    "azure-native:streamanalytics:Input": (
        "inputName",
        _RG + "Microsoft.StreamAnalytics/streamingjobs/{jobName}/inputs/{name}",
    ),
    "azure-native:streamanalytics:Output": (
        "outputName",
        _RG + "Microsoft.StreamAnalytics/streamingjobs/{jobName}/outputs/{name}",
    ),
    "azure-native:containerregistry:Registry": (
        "registryName",
        _RG + "Microsoft.ContainerRegistry/registries/{name}",
    ),
    "azure-native:applicationinsights:Component": (
        "resourceName",
        _RG + "Microsoft.Insights/components/{name}",
    ),
    "azure-native:keyvault:Vault": ("vaultName", _RG + "Microsoft.KeyVault/vaults/{name}"),
    "azure-native:machinelearningservices:Workspace": (
        "workspaceName",
        _RG + "Microsoft.MachineLearningServices/workspaces/{name}",
    ),
    "azure-native:machinelearningservices:Compute": (
        "computeName",
        _RG + "Microsoft.MachineLearningServices/workspaces/{workspaceName}/computes/{name}",
    ),
    "azure-native:machinelearningservices:Datastore": (
        "name",
        _RG + "Microsoft.MachineLearningServices/workspaces/{workspaceName}/datastores/{name}",
    ),
    "azure-native:machinelearningservices:ManagedNetworkSettingsRule": (
        "ruleName",
        _RG + "Microsoft.MachineLearningServices/workspaces/{workspaceName}/outboundRules/{name}",
    ),
    "azure-native:streamanalytics:Cluster": (
        "clusterName",
        _RG + "Microsoft.StreamAnalytics/clusters/{name}",
    ),
    "azure-native:streamanalytics:PrivateEndpoint": (
        "privateEndpointName",
        _RG + "Microsoft.StreamAnalytics/clusters/{clusterName}/privateEndpoints/{name}",
    ),
    "azure-native:network:VirtualNetwork": (
        "virtualNetworkName",
        _RG + "Microsoft.Network/virtualNetworks/{name}",
    ),
    "azure-native:network:Subnet": (
        "subnetName",
        _RG + "Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{name}",
    ),
    "azure-native:network:PrivateEndpoint": (
        "privateEndpointName",
        _RG + "Microsoft.Network/privateEndpoints/{name}",
    ),
    "azure-native:network:PrivateDnsZoneGroup": (
        "privateDnsZoneGroupName",
        _RG
        + "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{name}",
    ),
    "azure-native:privatedns:PrivateZone": (
        "privateZoneName",
        _RG + "Microsoft.Network/privateDnsZones/{name}",
    ),
    "azure-native:privatedns:VirtualNetworkLink": (
        "virtualNetworkLinkName",
        _RG + "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{name}",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "resourceName",
        _RG + "Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
    ),
    "azure-native:authorization:RoleAssignment": (
        "roleAssignmentName",
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
    ),
    "azure-native:monitor:DiagnosticSetting": (
        "name",
        "{resourceUri}/providers/Microsoft.Insights/diagnosticSettings/{name}",
    ),
    "azure-native:monitor:ActionGroup": (
        "actionGroupName",
        _RG + "Microsoft.Insights/actionGroups/{name}",
    ),
    "azure-native:monitor:ScheduledQueryRule": (
        "ruleName",
        _RG + "Microsoft.Insights/scheduledQueryRules/{name}",
    ),
    "azure-native:monitor:MetricAlert": (
        "ruleName",
        _RG + "Microsoft.Insights/metricAlerts/{name}",
    ),
    "azure-native:monitor:ActivityLogAlert": (
        "activityLogAlertName",
        _RG + "Microsoft.Insights/activityLogAlerts/{name}",
    ),
    "azure-native:applicationinsights:Workbook": (
        "resourceName",
        _RG + "Microsoft.Insights/workbooks/{name}",
    ),
}

SYSTEM_IDENTITY_TYPE = "pulumi-python:dynamic/batchscore:SystemIdentity"

# Resources whose provider gives a GUID when no name is set.
_GUID_NAMED = {"azure-native:authorization:RoleAssignment"}


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


class OfflineMocks(pulumi_mocks.Mocks):
    """Deterministic stand-ins for Azure, pulumi-random and docker-build."""

    def __init__(self, project: str, stack: str) -> None:
        self.project = project
        self.stack = stack

    # --- helpers -----------------------------------------------------------------------
    def _guid(self, *parts: Any) -> str:
        return str(uuid.uuid5(_NAMESPACE, "/".join([self.project, self.stack, *map(str, parts)])))

    def _autoname(self, typ: str, logical: str) -> str:
        if typ in _GUID_NAMED:
            return self._guid(typ, logical)
        # azure-native auto-names as the logical name plus a random suffix.
        return f"{logical}{_digest(self.project, self.stack, typ, logical)[:8]}"

    def principal_id(self, typ: str, logical: str) -> str:
        """The object id the mocks give the managed identity of resource (typ, logical)."""
        return self._guid(typ, logical, "principal")

    def _identity(self, typ: str, logical: str, kind: str = "SystemAssigned") -> dict[str, str]:
        return {"type": kind, "principalId": self.principal_id(typ, logical), "tenantId": TENANT_ID}

    # --- the Mocks interface -----------------------------------------------------------------
    def call(self, args: pulumi_mocks.MockCallArgs):
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": DEPLOYER_CLIENT_ID,
                "objectId": DEPLOYER_OBJECT_ID,
                "subscriptionId": SUBSCRIPTION_ID,
                "tenantId": TENANT_ID,
            }, []
        if args.token == "azure-native:authorization:getClientToken":
            return {"token": OFFLINE_ENTRA_TOKEN}, []
        raise NotImplementedError(f"no offline answer for invoke {args.token}")

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        typ, logical, inputs = args.typ, args.name, dict(args.inputs)
        if typ == "random:index/randomString:RandomString":
            return self._random_string(logical, inputs)
        if typ == "docker-build:index:Image":
            return self._image(logical, inputs)
        if typ.startswith("pulumi-python:dynamic/"):
            return self._dynamic(typ, logical, inputs)
        if typ not in ARM_TYPES:
            return f"{logical}-id", inputs
        name_key, template = ARM_TYPES[typ]
        name = inputs.get(name_key) or self._autoname(typ, logical)
        values = {k: v for k, v in inputs.items() if isinstance(v, str)}
        resource_id = template.format(**{**values, "sub": SUBSCRIPTION_ID, "name": name})
        state = {**inputs, name_key: name, "name": name, "id": resource_id}
        identity = inputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Inputs list the identities' ids; ARM answers with a map id -> identity.
            state["identity"] = {
                **identity,
                "userAssignedIdentities": {
                    ident: {"principalId": self._guid(ident, "principal")}
                    for ident in identity["userAssignedIdentities"]
                },
            }
        state.update(self._computed(typ, logical, name, inputs))
        return resource_id, state

    # --- per type ------------------------------------------------------------------------------
    def _computed(self, typ: str, logical: str, name: str, inputs: dict) -> dict[str, Any]:
        if typ == "azure-native:storage:StorageAccount":
            return {
                "primaryEndpoints": {
                    service: f"https://{name}.{service}.core.windows.net/"
                    for service in ("blob", "dfs", "queue", "table", "file", "web")
                }
            }
        if typ == "azure-native:eventhub:Namespace":
            return {
                "serviceBusEndpoint": f"https://{name}.servicebus.windows.net:443/",
                "identity": self._identity(typ, logical),
            }
        if typ == "azure-native:sql:Server":
            return {"fullyQualifiedDomainName": f"{name}.database.windows.net"}
        if typ in (
            "azure-native:streamanalytics:StreamingJob",
            "azure-native:machinelearningservices:Workspace",
        ):
            extra = {"identity": self._identity(typ, logical)}
            if typ.endswith("Workspace"):
                extra["workspaceId"] = self._guid(typ, logical, "workspace")
            return extra
        if typ == "azure-native:containerregistry:Registry":
            return {"loginServer": f"{name}.azurecr.io"}
        if typ == "azure-native:managedidentity:UserAssignedIdentity":
            return {
                "principalId": self.principal_id(typ, logical),
                "clientId": self._guid(typ, logical, "client"),
                "tenantId": TENANT_ID,
            }
        if typ == "azure-native:applicationinsights:Component":
            key = self._guid(typ, logical, "instrumentation-key")
            region = inputs.get("location", "westeurope")
            return {
                "instrumentationKey": key,
                "connectionString": f"InstrumentationKey={key};IngestionEndpoint="
                f"https://{region}-0.in.applicationinsights.azure.com/",
            }
        if typ == "azure-native:keyvault:Vault":
            properties = dict(inputs.get("properties") or {})
            properties["vaultUri"] = f"https://{name}.vault.azure.net/"
            return {"properties": properties}
        return {}

    def _dynamic(self, typ: str, logical: str, inputs: dict):
        """What a dynamic provider's check() fills in before create (its auto-names), made
        deterministic: the real check draws a random suffix, which a plan snapshot cannot hold.
        The system-identity lookup answers with a client id, as Managed Identity would."""
        state = dict(inputs)
        if "scheduleNamePrefix" in inputs and not inputs.get("scheduleName"):
            suffix = _digest(self.project, self.stack, logical)[:8]
            state["scheduleName"] = f"{inputs['scheduleNamePrefix']}-{suffix}"
        if typ == SYSTEM_IDENTITY_TYPE:
            state["clientId"] = self._guid(inputs.get("resourceId"), "client")
        return f"{logical}-{_digest(self.project, self.stack, logical, 'id')[:12]}", state

    def _random_string(self, logical: str, inputs: dict):
        length = int(inputs.get("length", 6))
        alphabet = string.ascii_lowercase + (string.digits if inputs.get("numeric", True) else "")
        seed = _digest(self.project, self.stack, logical)
        chars = [alphabet[int(seed[i * 2 : i * 2 + 2], 16) % len(alphabet)] for i in range(length)]
        chars[0] = string.ascii_lowercase[int(seed[:2], 16) % 26]  # min_lower honoured
        result = "".join(chars)
        return f"{logical}-{result}", {**inputs, "result": result}

    def _image(self, logical: str, inputs: dict):
        tags = inputs.get("tags") or []
        digest = "sha256:" + _digest(self.project, self.stack, logical, *tags)
        ref = f"{tags[0]}@{digest}" if tags else digest
        return f"{logical}-{digest[7:19]}", {**inputs, "digest": digest, "ref": ref}


# --- recording what the engine receives ------------------------------------------------------
def _plain(value: Any) -> Any:
    """A Struct-as-dict value with secrets/unknowns as markers and whole floats as ints."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return SECRET_MARKER
        if sig == rpc._special_resource_sig:
            return {"resource": value.get("urn", "")}
        if sig is not None:
            return f"[{sig}]"
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN_MARKER
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent_urn: str
    protect: bool
    inputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    depends_on: list[str] = field(default_factory=list)
    hooks: dict[str, list[str]] = field(default_factory=dict)
    ignore_changes: list[str] = field(default_factory=list)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that also records every registration as the engine would receive it."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        registration = Registration(
            urn=self.make_urn(request.parent, request.type, request.name),
            type=request.type,
            name=request.name,
            parent_urn=request.parent,
            protect=bool(request.protect),
            inputs=_plain(json_format.MessageToDict(request.object)),
            depends_on=_explicit_dependencies(request),
            hooks=_hook_names(request),
            ignore_changes=sorted(request.ignoreChanges),
        )
        self.registrations.append(registration)
        response = super().RegisterResource(request)
        registration.id = response.id if request.custom else None
        return response


def _explicit_dependencies(request) -> list[str]:
    """Logical names of the resources `request` depends on beyond those its inputs refer to."""
    implied = {urn for deps in request.propertyDependencies.values() for urn in deps.urns}
    return sorted({urn.rsplit("::", 1)[-1] for urn in set(request.dependencies) - implied})


_HOOK_KINDS = {
    "before_create": "beforeCreate",
    "after_create": "afterCreate",
    "before_update": "beforeUpdate",
    "after_update": "afterUpdate",
    "before_delete": "beforeDelete",
    "after_delete": "afterDelete",
}


def _hook_names(request) -> dict[str, list[str]]:
    """`{"beforeUpdate": [hook names], ...}` of the hooks bound to the resource."""
    if not request.HasField("hooks"):
        return {}
    bound = {kind: list(getattr(request.hooks, field)) for field, kind in _HOOK_KINDS.items()}
    return {kind: names for kind, names in bound.items() if names}


def install(project: str, stack: str, config: dict[str, str]) -> RecordingMonitor:
    """Point the Pulumi runtime at the offline mocks with this stack's config."""
    monitor = RecordingMonitor(OfflineMocks(project, stack))
    pulumi.runtime.set_all_config(config)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor
    )
    return monitor
