"""Preflight: what would stop `pulumi up` of a stack, checked before it runs, as the deployer.

Each check reads Azure Resource Manager as the identity that will run `pulumi up` and ends
``ok`` or ``failed`` with the commands that fix it:

* **resource providers**: every namespace the stack creates resources in is ``Registered`` in
  the subscription (``GET /subscriptions/{id}/providers``).
* **region**: the stack's ``location`` offers every resource type the stack creates (the same
  list: each type's ``locations``).
* **role assignments**: the deployer may create role assignments where the stack creates them:
  Owner, or Contributor plus Role Based Access Control Administrator or User Access
  Administrator, at the subscription (or above), or on the stack's resource group when it
  already exists (``roleAssignments?$filter=assignedTo('{object id}')``, group memberships
  included).
* **ML quota**: the cluster's VM size exists in the region for Azure ML, and its family's
  dedicated vCPU quota (with the regional total), or the regional low-priority quota for a
  ``LowPriority`` cluster, has room for ``clusterMaxNodes`` x the size's vCPUs (Azure ML
  ``locations/{region}/vmSizes`` and ``/usages``).
* **SQL admin**: when the deployer becomes the SQL server's Entra admin (no
  ``sqlAdminObjectId``), ``sqlAdminPrincipalType`` matches its kind: ``User`` for a person,
  ``Application`` for a service principal or managed identity. With ``sqlAdminObjectId`` set,
  the SQL bootstrap still connects as the deployer, so the deployer must be that admin, or a
  member of that group (from the token's ``groups`` claim when it carries one).
* **usual deployer**: without ``sqlAdminObjectId`` the identity running `pulumi up` becomes
  the SQL admin and receives the storage data role; a stack already deployed by another
  identity (its SQL server's admin, found in the resource group tagged with the stack's
  project and environment) would flip both to whoever runs `pulumi up` now.
* **this machine** (:mod:`batchscore.preflight_local`, run beside these by the command):
  Docker with buildx for the scoring image, and, outside CI, an address in
  ``sqlFirewallIpRanges`` for the SQL bootstrap.

With ``networkIsolation`` (docs/networking.md) three more:

* **private networking in the region**: ``Microsoft.Network`` is registered and the region
  offers virtual networks, private endpoints and Stream Analytics clusters (the stack's choice
  for a private Stream Analytics job); private DNS zones are global.
* **managed network**: the ML workspaces already in the stack's resource group
  (``--resource-group``) that do not have the managed network yet: enabling it cannot be undone,
  so it is a warning to read, not a failure.
* **line of sight**: from this machine, the private endpoints the data-plane steps of
  ``pulumi up`` use (blob storage, SQL, the registry; names from ``--outputs``, the stack's
  outputs) resolve to private addresses and accept a connection; run it on the deployment
  runner inside the VNet.
* **private endpoint connections** (with ``--resource-group`` and ``--outputs``): no connection
  to the Event Hubs namespace or the SQL server waits for approval; the Stream Analytics
  cluster's managed private endpoints stay *Pending* until someone approves them.

Who the deployer is comes from its own ARM access token (object id ``oid``; kind from
``idtyp``, or a delegated token's ``scp``). The token is never printed or kept; object ids and
the subscription id are not secrets. Nothing here writes to Azure.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.config import StackConfig
from components.config.stack import PROJECT
from components.providers.arm_rest import ArmGetter, get_all
from components.providers.azure_errors import AzureCallError, explain
from components.shared.roles import ROLE_IDS, STACK_ROLES

PROVIDERS_API = "2021-04-01"
ROLE_ASSIGNMENTS_API = "2022-04-01"
ML_API = "2024-04-01"
RESOURCE_GROUPS_API = "2021-04-01"
EVENTHUB_API = "2024-01-01"
SQL_API = "2021-11-01"

# namespace -> the resource types of it the stack creates (their region must offer them)
RESOURCE_TYPES: dict[str, tuple[str, ...]] = {
    "Microsoft.MachineLearningServices": ("workspaces",),
    "Microsoft.StreamAnalytics": ("streamingjobs",),
    "Microsoft.EventHub": ("namespaces",),
    "Microsoft.Sql": ("servers",),
    "Microsoft.ContainerRegistry": ("registries",),
    "Microsoft.KeyVault": ("vaults",),
    "Microsoft.Insights": ("components",),
    "Microsoft.OperationalInsights": ("workspaces",),
    "Microsoft.ManagedIdentity": ("userAssignedIdentities",),
    "Microsoft.Storage": ("storageAccounts",),
}
ROLE_WRITERS = ("User Access Administrator", "Role Based Access Control Administrator")
# With networkIsolation: namespace -> the regional resource types of private networking.
NETWORK_RESOURCE_TYPES: dict[str, tuple[str, ...]] = {
    "Microsoft.Network": ("virtualNetworks", "privateEndpoints"),
    "Microsoft.StreamAnalytics": ("clusters",),
}
ISOLATED_MODE = "AllowOnlyApprovedOutbound"
CONNECT_TIMEOUT_SECONDS = 3.0


class PreflightError(Exception):
    """The preflight cannot run at all (no credential, unreadable token): one line."""


@dataclass(frozen=True)
class Deployer:
    """The identity running `pulumi up`: Entra object id, tenant, ``user`` or ``app``, and
    the groups its token names (None when the token carries no ``groups`` claim)."""

    object_id: str
    tenant_id: str
    kind: str
    groups: frozenset[str] | None = None

    @property
    def principal_type(self) -> str:
        return "User" if self.kind == "user" else "ServicePrincipal"

    @property
    def sql_admin_type(self) -> str:
        return "User" if self.kind == "user" else "Application"


def deployer_from_token(token: str) -> Deployer:
    """The deployer described by its ARM access token's claims (the signature is ARM's
    business; only our own token's claims are read)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise PreflightError(
            "the Azure access token is not a JWT; cannot tell who deploys"
        ) from exc
    if not claims.get("oid"):
        raise PreflightError("the Azure access token names no object id (oid claim)")
    kind = claims.get("idtyp")
    if kind not in ("user", "app"):
        # App-only tokens carry no delegated scopes (scp); tokens of a person do.
        kind = "user" if claims.get("scp") else "app"
    groups = claims.get("groups")
    named = frozenset(str(g).lower() for g in groups) if isinstance(groups, list) else None
    return Deployer(str(claims["oid"]), str(claims.get("tid", "")), kind, named)


@dataclass(frozen=True)
class Target:
    """What the stack needs, where."""

    stack: str
    subscription_id: str
    config: StackConfig
    resource_group: str | None = None
    # The stack's outputs (`pulumi stack output --json`), when it exists: the endpoints' names.
    outputs: Mapping[str, Any] | None = None

    @property
    def subscription_scope(self) -> str:
        return f"/subscriptions/{self.subscription_id}"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fixes: list[str] = field(default_factory=list)
    # A passed check that still asks to be read (printed WARN; it does not fail the preflight).
    warning: bool = False


def _norm(location: str) -> str:
    return location.replace(" ", "").lower()


# --- the checks (each takes what it reads, so each is testable against a fake) -------------


def check_providers(providers: Sequence[Mapping[str, Any]], target: Target) -> Check:
    state = {p.get("namespace", "").lower(): p.get("registrationState") for p in providers}
    missing = [ns for ns in RESOURCE_TYPES if state.get(ns.lower()) != "Registered"]
    if not missing:
        return Check("resource providers", True, f"all {len(RESOURCE_TYPES)} registered")
    return Check(
        "resource providers",
        False,
        "not registered: "
        + ", ".join(f"{ns} ({state.get(ns.lower(), 'unknown')})" for ns in missing),
        [
            f"az provider register --namespace {ns} --subscription {target.subscription_id}"
            for ns in missing
        ],
    )


def check_region(providers: Sequence[Mapping[str, Any]], target: Target) -> Check:
    region = target.config.location
    offered: dict[str, set[str] | None] = {}
    for provider in providers:
        namespace = provider.get("namespace", "")
        wanted = RESOURCE_TYPES.get(namespace) or next(
            (v for k, v in RESOURCE_TYPES.items() if k.lower() == namespace.lower()), ()
        )
        for entry in provider.get("resourceTypes") or []:
            if entry.get("resourceType") in wanted:
                locations = entry.get("locations") or []
                key = f"{namespace}/{entry['resourceType']}"
                offered[key] = {_norm(x) for x in locations} if locations else None  # None: global
    needed = [f"{ns}/{t}" for ns, types in RESOURCE_TYPES.items() for t in types]
    unknown = [k for k in needed if k.lower() not in {o.lower() for o in offered}]
    lacking = [
        k for k in needed if k in offered and offered[k] is not None and region not in offered[k]
    ]
    if not unknown and not lacking:
        return Check(f"region {region}", True, "offers every service of the stack")
    everywhere = [v for k, v in offered.items() if v is not None and k in needed]
    regions = sorted(set.intersection(*everywhere)) if everywhere and not unknown else []
    problems = [f"{k} is not offered" for k in lacking] + [f"{k} is unknown" for k in unknown]
    hint = f" (regions offering all: {', '.join(regions[:8])})" if regions else ""
    return Check(
        f"region {region}",
        False,
        "; ".join(problems),
        [f"pulumi config set location <region> --stack {target.stack}{hint}"],
    )


def check_role_writer(
    assignments: Sequence[Mapping[str, Any]], target: Target, deployer: Deployer
) -> Check:
    by_id = {v: k for k, v in ROLE_IDS.items()}
    covering = {target.subscription_scope.lower(), "/"}
    if target.resource_group:
        covering.add(f"{target.subscription_scope}/resourceGroups/{target.resource_group}".lower())
    held: dict[str, str] = {}  # role name -> condition ("" when unconditional)
    for assignment in assignments:
        properties = assignment.get("properties") or {}
        scope = str(properties.get("scope", "")).rstrip("/").lower() or "/"
        applies = scope in covering or scope.startswith("/providers/microsoft.management/")
        role = by_id.get(str(properties.get("roleDefinitionId", "")).rsplit("/", 1)[-1])
        if applies and role:
            held.setdefault(role, properties.get("condition") or "")
    where = "the subscription" + (
        f" or resource group {target.resource_group}" if target.resource_group else ""
    )
    if "Owner" in held:
        return Check("role assignments", True, f"Owner on {where}")
    writers = [r for r in ROLE_WRITERS if r in held]
    if "Contributor" in held and writers:
        detail = f"Contributor + {writers[0]} on {where}"
        condition = held[writers[0]]
        if not condition:
            return Check("role assignments", True, detail)
        allowed = _roles_a_condition_allows(condition)
        if allowed is None:  # not the portal's "constrain roles" form: say what it must allow
            return Check(
                "role assignments",
                True,
                f"{detail} (with a condition: it must allow the roles the stack assigns: "
                f"{', '.join(STACK_ROLES)})",
            )
        refused = [role for role in STACK_ROLES if ROLE_IDS[role] not in allowed]
        if not refused:
            return Check("role assignments", True, f"{detail}, its condition allows every role")
        return Check(
            "role assignments",
            False,
            f"{detail}, but its condition does not allow {', '.join(refused)}, which the stack "
            "assigns",
            [
                f"add {', '.join(refused)} to the roles the condition of {writers[0]} allows "
                f"for {deployer.object_id} (Azure portal > Access control (IAM) > Role "
                "assignments > the assignment > Condition), or use an unconditional one"
            ],
        )
    need = [r for r in ("Contributor",) if r not in held] + ([] if writers else [ROLE_WRITERS[1]])
    scope = target.subscription_scope
    return Check(
        "role assignments",
        False,
        f"the deployer holds {', '.join(sorted(held)) or 'no role'} on {where}; it needs Owner, "
        "or Contributor + Role Based Access Control Administrator (or User Access Administrator)",
        [
            f"az role assignment create --assignee-object-id {deployer.object_id} "
            f'--assignee-principal-type {deployer.principal_type} --role "{role}" --scope {scope}'
            for role in need
        ],
    )


_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _roles_a_condition_allows(condition: str) -> set[str] | None:
    """The role definition ids a role-writer condition lets the holder assign, when it is the
    form the portal writes ("Constrain roles": ``@Request[Microsoft.Authorization/
    roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {id, ...}``, see
    learn.microsoft.com/azure/role-based-access-control/delegate-role-assignments-examples);
    None for any other condition, which this check cannot read."""
    if "RoleDefinitionId" not in condition or "GuidEquals" not in condition:
        return None
    found = {g.lower() for g in _GUID.findall(condition)}
    return found or None


def _family_key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


@dataclass(frozen=True)
class _Quota:
    """One quota the cluster draws on: how the usages name it, how Microsoft.Quota does."""

    usage_key: str  # _family_key of the usage's name.value
    label: str
    quota_resource: str


def _quotas_for(config: StackConfig, family: str) -> list[_Quota]:
    """Regional total and, for dedicated nodes, the VM family (Azure ML usages, 2024-04-01:
    'Total Cluster Dedicated Regional vCPUs', 'Standard DSv2 Family Cluster Dedicated vCPUs',
    'Total Cluster LowPriority Regional vCPUs'; low-priority families report no limit)."""
    if config.cluster_vm_priority == "LowPriority":
        label = "Total Cluster LowPriority Regional vCPUs"
        return [_Quota(_family_key(label), label, "TotalLowPriorityCores")]
    total = "Total Cluster Dedicated Regional vCPUs"
    return [
        _Quota(_family_key(total), total, "TotalDedicatedCores"),
        _Quota(_family_key(family) + "clusterdedicatedvcpus", f"{family} dedicated vCPUs", family),
    ]


def check_ml_quota(
    vm_sizes: Sequence[Mapping[str, Any]], usages: Sequence[Mapping[str, Any]], target: Target
) -> Check:
    config, region = target.config, target.config.location
    name = (
        f"ML quota ({config.cluster_max_nodes} x {config.cluster_vm_size}, "
        f"{config.cluster_vm_priority})"
    )
    wanted = config.cluster_vm_size.lower()
    size = next((s for s in vm_sizes if str(s.get("name", "")).lower() == wanted), None)
    if size is None:
        offered = ", ".join(sorted(str(s.get("name", "")) for s in vm_sizes)[:8])
        return Check(
            name,
            False,
            f"{config.cluster_vm_size} is not an Azure ML VM size in {region}",
            [f"pulumi config set clusterVmSize <size> --stack {target.stack} (e.g. {offered})"],
        )
    needed = config.cluster_max_nodes * int(size.get("vCPUs") or 0)
    family = str(size.get("family", ""))
    # The subscription's quotas in the region (workspace and compute shares are left out).
    regional = {
        _family_key(str((u.get("name") or {}).get("value", ""))): u
        for u in usages
        if "/workspaces/" not in str(u.get("id", ""))
    }
    short: list[tuple[_Quota, str]] = []
    for quota in _quotas_for(config, family):
        usage = regional.get(quota.usage_key)
        if usage is None:
            short.append((quota, f"{quota.label}: not reported in {region}"))
            continue
        limit, current = int(usage.get("limit", 0)), int(usage.get("currentValue", 0))
        if 0 <= limit and limit - current < needed:
            short.append((quota, f"{quota.label}: {current} of {limit} used, {needed} needed"))
    if not short:
        return Check(name, True, f"{needed} vCPUs fit the {region} quota ({family})")
    provider = "providers/Microsoft.MachineLearningServices"
    scope = f"{target.subscription_scope}/{provider}/locations/{region}"
    fixes = [
        f"az quota update --resource-name {quota.quota_resource} --scope {scope} "
        "--limit-object value=<new limit>   (or Azure portal > Azure Machine Learning > Quotas)"
        for quota, _ in short
    ]
    fixes.append(f"or fewer nodes: pulumi config set clusterMaxNodes <n> --stack {target.stack}")
    return Check(name, False, "; ".join(text for _, text in short), fixes)


def check_sql_admin(target: Target, deployer: Deployer) -> Check:
    config = target.config
    if not config.sql_admin_from_deployer:
        return _check_named_sql_admin(target, deployer)
    expected = deployer.sql_admin_type
    if config.sql_admin_principal_type == expected:
        return Check(
            "SQL admin", True, f"the deployer ({deployer.kind}) becomes the {expected} admin"
        )
    return Check(
        "SQL admin",
        False,
        f"the deployer is a {'person' if deployer.kind == 'user' else 'service principal'} and "
        f"becomes the SQL admin, but sqlAdminPrincipalType is {config.sql_admin_principal_type}",
        [f"pulumi config set sqlAdminPrincipalType {expected} --stack {target.stack}"],
    )


def _check_named_sql_admin(target: Target, deployer: Deployer) -> Check:
    """sqlAdminObjectId is set: the SQL bootstrap connects as the deployer, who must be that
    admin (User, Application) or a member of that group (Group)."""
    config = target.config
    admin, kind = config.sql_admin_object_id.lower(), config.sql_admin_principal_type
    named = f"{config.sql_admin_login} ({kind} {config.sql_admin_object_id})"
    if deployer.object_id.lower() == admin:
        return Check("SQL admin", True, f"the deployer is the admin {named}")
    fixes = [
        f"deploy as {config.sql_admin_login}, or clear sqlAdminObjectId and sqlAdminLogin "
        f"(`pulumi config rm sqlAdminObjectId --stack {target.stack}`, same for "
        "sqlAdminLogin) so the deployer becomes the admin"
    ]
    if kind != "Group":
        return Check(
            "SQL admin",
            False,
            f"the admin is {named}, but the deployer ({deployer.object_id}) runs the SQL "
            "bootstrap, which the server would refuse",
            fixes,
        )
    check_it = (
        f"az ad group member check --group {config.sql_admin_object_id} "
        f"--member-id {deployer.object_id}"
    )
    if deployer.groups is None:
        return Check(
            "SQL admin",
            True,
            f"the admin is the group {named}; the deployer's token does not list its groups, "
            f"so membership is not verified here: `{check_it}` must say true",
        )
    if admin in deployer.groups:
        return Check("SQL admin", True, f"the deployer is a member of the admin group {named}")
    return Check(
        "SQL admin",
        False,
        f"the admin is the group {named}, and the deployer ({deployer.object_id}) is not a "
        "member (its token's groups), so the server would refuse the SQL bootstrap",
        [
            f"az ad group member add --group {config.sql_admin_object_id} "
            f"--member-id {deployer.object_id}",
            *fixes,
        ],
    )


def check_usual_deployer(
    servers: Sequence[Mapping[str, Any]], target: Target, deployer: Deployer, group: str
) -> Check:
    """Without sqlAdminObjectId the deployer becomes the SQL admin and gets the storage data
    role: on a stack another identity deployed, `pulumi up` would move both to this one."""
    name = "usual deployer"
    admins = [
        (str(s.get("name", "")), (s.get("properties") or {}).get("administrators") or {})
        for s in servers
    ]
    others = [
        (server, a)
        for server, a in admins
        if str(a.get("sid", "")).lower() not in ("", deployer.object_id.lower())
    ]
    if not others:
        return Check(name, True, f"the stack in {group} was deployed by this identity")
    server, admin = others[0]
    return Check(
        name,
        False,
        f"SQL server {server} in {group} has the admin {admin.get('login', '?')} "
        f"({admin.get('sid')}), not this deployer ({deployer.object_id}): `pulumi up` as this "
        "identity would make it the SQL admin and move the deployer's storage role to it",
        [
            "deploy as the identity that deployed the stack (its pipeline, or `az login` as it)",
            f"or pin the admin: pulumi config set sqlAdminObjectId {admin.get('sid')} and "
            f"sqlAdminLogin {admin.get('login', '<login>')} --stack {target.stack} (with "
            "sqlAdminPrincipalType)",
        ],
    )


# --- private networking (networkIsolation) ---------------------------------------------------


def check_private_network_region(providers: Sequence[Mapping[str, Any]], target: Target) -> Check:
    """Microsoft.Network registered; virtual networks, private endpoints and Stream Analytics
    clusters offered in the stack's region. Stream Analytics reaches Event Hubs and SQL through
    a dedicated cluster's managed private endpoints (components/stream_processing.py: the job's
    own VNet injection cannot be declared); clusters are not offered in every region."""
    name, region = "private networking in the region", target.config.location
    by_namespace = {str(p.get("namespace", "")).lower(): p for p in providers}
    problems, fixes = [], []
    for namespace, types in NETWORK_RESOURCE_TYPES.items():
        provider = by_namespace.get(namespace.lower())
        if provider is None or provider.get("registrationState") != "Registered":
            state = provider.get("registrationState", "unknown") if provider else "unknown"
            problems.append(f"{namespace} is not registered ({state})")
            fixes.append(
                f"az provider register --namespace {namespace} "
                f"--subscription {target.subscription_id}"
            )
            continue
        entries = {str(e.get("resourceType", "")).lower(): e for e in provider["resourceTypes"]}
        for resource_type in types:
            entry = entries.get(resource_type.lower())
            offered = {_norm(x) for x in (entry or {}).get("locations") or []}
            if entry is None or (offered and region not in offered and "global" not in offered):
                problems.append(f"{namespace}/{resource_type} is not offered in {region}")
    if not problems:
        return Check(name, True, "virtual networks, private endpoints and Stream Analytics "
                     f"clusters are offered in {region}")  # fmt: skip
    if any("not offered" in p for p in problems):
        fixes.append(
            f"pulumi config set location <region> --stack {target.stack} (a region offering "
            "Stream Analytics clusters), or networkIsolation false"
        )
    return Check(name, False, "; ".join(problems), fixes)


def check_managed_network_one_way(
    workspaces: Sequence[Mapping[str, Any]] | None, target: Target
) -> Check:
    """Warn before the stack enables the managed network on a workspace that exists without
    it: it cannot be turned off again (Azure/terraform-provider-azapi#564). `None`: the
    resource group was not given, so nothing was read."""
    name = "managed network"
    if workspaces is None:
        return Check(
            name,
            True,
            "not checked: for a stack that exists already, pass --resource-group to see "
            "whether this run enables its workspace's managed network (a one-way change)",
            warning=True,
        )
    without = [
        str(w.get("name"))
        for w in workspaces
        if ((w.get("properties") or {}).get("managedNetwork") or {}).get("isolationMode")
        != ISOLATED_MODE
    ]
    if not without:
        return Check(name, True, f"no workspace in {target.resource_group} is changed by it")
    return Check(
        name,
        True,
        f"`pulumi up` switches on the managed network ({ISOLATED_MODE}) of "
        f"{', '.join(sorted(without))}: it cannot be switched off or back to internet "
        "outbound afterwards, and Azure ML refuses the change while the workspace has any "
        "compute (how-to-managed-network, 'Update an existing workspace')",
        [
            "delete the workspace's cluster first: pulumi destroy --stack "
            f"{target.stack} --target <urn of ml-cluster> (docs/networking.md, one-way changes)",
            f"or keep it public: pulumi config set networkIsolation false --stack {target.stack}",
        ],
        warning=True,
    )


def check_pending_connections(
    connections: Mapping[str, Sequence[Mapping[str, Any]]], target: Target
) -> Check:
    """`connections`: ARM id of the namespace / SQL server -> its private endpoint
    connections. A Pending one is most likely the Stream Analytics cluster's managed private
    endpoint (docs/networking.md): until it is approved the job cannot read or write."""
    name = "private endpoint connections"
    pending = [
        (resource_id, connection)
        for resource_id, listed in connections.items()
        for connection in listed
        if ((connection.get("properties") or {}).get("privateLinkServiceConnectionState") or {})
        .get("status", "")
        .lower()
        == "pending"
    ]
    if not pending:
        counted = sum(len(listed) for listed in connections.values())
        return Check(name, True, f"none pending on Event Hubs and SQL ({counted} in place)")
    return Check(
        name,
        False,
        "; ".join(
            f"{connection.get('name')} on {resource_id.rsplit('/', 1)[-1]} waits for approval"
            for resource_id, connection in pending
        )
        + ": the Stream Analytics job cannot reach its input or output until it is approved",
        [
            f"az network private-endpoint-connection approve --id {connection.get('id')} "
            '--description "stream analytics cluster"   (if it is the cluster\'s request)'
            for _, connection in pending
        ],
    )


def stack_resource_group(groups: Sequence[Mapping[str, Any]], target: Target) -> str | None:
    """The stack's resource group: ``--resource-group``, else the one tagged with the
    project and the stack's environment (components.shared.placement.standard_tags)."""
    if target.resource_group:
        return target.resource_group
    for group in groups:
        tags = group.get("tags") or {}
        if tags.get("project") == PROJECT and tags.get("environment") == target.stack:
            return str(group.get("name"))
    return None


Resolve = Callable[[str, int], list[str]]
Connect = Callable[[str, int, float], None]


def _resolve(host: str, port: int) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def _connect(address: str, port: int, timeout: float) -> None:
    with socket.create_connection((address, port), timeout=timeout):
        pass


def data_plane_endpoints(outputs: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(what, host, port) of each private endpoint a data-plane step of `pulumi up` uses:
    the code upload, the deployer's probe and Capture's check (blob), the SQL bootstrap
    (SQL), the image push (registry). From the stack's outputs (README, Stack outputs)."""
    wanted = [
        ("blob storage", f"{outputs.get('storageAccountName')}.blob.core.windows.net", 443),
        ("SQL", str(outputs.get("sqlServerFqdn")), 1433),
        ("registry", str(outputs.get("registryLoginServer")), 443),
    ]
    return [(what, host, port) for what, host, port in wanted if "None" not in host]


def check_line_of_sight(
    target: Target, resolve: Resolve | None = None, connect: Connect | None = None
) -> Check:
    """Each data-plane endpoint resolves to a private address (through the stack's private
    DNS zones) and accepts a TCP connection within CONNECT_TIMEOUT_SECONDS (default probes:
    the system resolver and a socket)."""
    resolve, connect = resolve or _resolve, connect or _connect
    name = "line of sight"
    if not target.outputs:
        return Check(
            name,
            True,
            "not checked: no stack outputs (a first deployment); run it again with --outputs "
            "once the network exists, on the deployment runner",
            warning=True,
        )
    endpoints = data_plane_endpoints(target.outputs)
    problems: list[str] = []
    for what, host, port in endpoints:
        try:
            addresses = resolve(host, port)
        except OSError as exc:
            problems.append(f"{what} {host} does not resolve ({exc.__class__.__name__})")
            continue
        public = [a for a in addresses if not ipaddress.ip_address(a).is_private]
        if public or not addresses:
            problems.append(
                f"{what} {host} resolves to {', '.join(public) or 'nothing'}, not its private "
                "endpoint: this machine does not use the VNet's private DNS zones"
            )
            continue
        try:
            connect(addresses[0], port, CONNECT_TIMEOUT_SECONDS)
        except OSError as exc:
            problems.append(
                f"{what} {host} ({addresses[0]}:{port}) does not answer within "
                f"{CONNECT_TIMEOUT_SECONDS:g} s ({exc.__class__.__name__})"
            )
    if not endpoints:
        problems.append("the outputs name none of storageAccountName, sqlServerFqdn, "
                        "registryLoginServer")  # fmt: skip
    if not problems:
        shown = ", ".join(f"{what}" for what, _, _ in endpoints)
        return Check(name, True, f"{shown} reached on private addresses")
    return Check(
        name,
        False,
        "; ".join(problems),
        [
            "run `pulumi up` and this preflight on the deployment runner in the stack's VNet "
            "(subnet deploy-runner), or resolve through the VNet's private DNS zones from a "
            "peered network (docs/networking.md)"
        ],
    )


# --- running them ----------------------------------------------------------------------------


def _read(arm: ArmGetter, path: str, api: str, params: Mapping[str, str] | None = None) -> list:
    try:
        return get_all(arm, path, api, params)
    except Exception as exc:  # one unreadable list fails its checks, not the whole preflight
        raise explain(
            exc, action="read", target=path.split("?")[0], required_role="Reader"
        ) from exc


def run_checks(
    arm: ArmGetter,
    target: Target,
    deployer: Deployer,
    probes: Mapping[str, Callable[..., Any]] | None = None,
) -> list[Check]:
    """Every check, in the order a deployment meets them. A list that cannot be read fails the
    checks that need it, with Azure's reason, and the others still run. `probes` replaces the
    line-of-sight check's `resolve` and `connect` (tests)."""
    sub, region = target.subscription_scope, target.config.location
    ml = f"{sub}/providers/Microsoft.MachineLearningServices/locations/{region}"

    def providers() -> list[Check]:
        listed = _read(arm, f"{sub}/providers", PROVIDERS_API)
        checks = [check_providers(listed, target), check_region(listed, target)]
        if target.config.network_isolation:
            checks.append(check_private_network_region(listed, target))
        return checks

    def managed_network() -> list[Check]:
        workspaces = None
        if target.resource_group:
            group = f"{sub}/resourceGroups/{target.resource_group}"
            workspaces = _read(
                arm, f"{group}/providers/Microsoft.MachineLearningServices/workspaces", ML_API
            )
        return [check_managed_network_one_way(workspaces, target)]

    def pending_connections() -> list[Check]:
        group = f"{sub}/resourceGroups/{target.resource_group}/providers"
        outputs = target.outputs or {}

        def first_label(key: str) -> str:  # a resource's name is its FQDN's first label
            return str(outputs.get(key, "")).split(".", 1)[0]

        targets = {
            f"{group}/Microsoft.EventHub/namespaces/{first_label('eventHubsNamespaceFqdn')}": (
                EVENTHUB_API
            ),
            f"{group}/Microsoft.Sql/servers/{first_label('sqlServerFqdn')}": SQL_API,
        }
        listed = {
            resource_id: _read(arm, f"{resource_id}/privateEndpointConnections", api)
            for resource_id, api in targets.items()
            if not resource_id.endswith("/")
        }
        return [check_pending_connections(listed, target)]

    def role_writer() -> list[Check]:
        assignments = _read(
            arm,
            f"{sub}/providers/Microsoft.Authorization/roleAssignments",
            ROLE_ASSIGNMENTS_API,
            {"$filter": f"assignedTo('{deployer.object_id}')"},
        )
        return [check_role_writer(assignments, target, deployer)]

    def ml_quota() -> list[Check]:
        sizes = _read(arm, f"{ml}/vmSizes", ML_API)
        return [check_ml_quota(sizes, _read(arm, f"{ml}/usages", ML_API), target)]

    def usual_deployer() -> list[Check]:
        if not target.config.sql_admin_from_deployer:
            return []  # the admin is pinned: the deployer changes neither admin nor role
        # --resource-group names it; else find it by its tags (a listing needs Reader on the
        # subscription, which a deployer holding roles on the group alone may lack)
        groups = (
            []
            if target.resource_group
            else _read(arm, f"{sub}/resourcegroups", RESOURCE_GROUPS_API)
        )
        group = stack_resource_group(groups, target)
        if group is None:
            return [Check("usual deployer", True, "the stack is not deployed yet")]
        servers = _read(
            arm, f"{sub}/resourceGroups/{group}/providers/Microsoft.Sql/servers", SQL_API
        )
        return [check_usual_deployer(servers, target, deployer, group)]

    steps = [
        ("resource providers and region", providers),
        ("role assignments", role_writer),
        ("ML quota", ml_quota),
        ("usual deployer", usual_deployer),
    ]
    if target.config.network_isolation:
        steps.append(("managed network", managed_network))
        if target.resource_group and target.outputs:
            steps.append(("private endpoint connections", pending_connections))
    checks: list[Check] = []
    for name, step in steps:
        try:
            checks += step()
        except AzureCallError as exc:
            checks.append(Check(name, False, str(exc), ["az login as the identity that deploys"]))
    checks.append(check_sql_admin(target, deployer))
    if target.config.network_isolation:
        checks.append(check_line_of_sight(target, **(probes or {})))
    return checks


def report(checks: Sequence[Check], target: Target, deployer: Deployer) -> str:
    lines = [
        f"preflight of stack {target.stack} in subscription {target.subscription_id} "
        f"({target.config.location}), as {deployer.kind} {deployer.object_id}:"
    ]
    for check in checks:
        status = "FAILED" if not check.ok else "WARN  " if check.warning else "ok    "
        lines.append(f"  {status}  {check.name}: {check.detail}")
        lines += [f"          fix: {fix}" for fix in check.fixes]
    failed = [c for c in checks if not c.ok]
    lines.append(
        f"{len(failed)} of {len(checks)} checks failed: fix them before `pulumi up`."
        if failed
        else f"all {len(checks)} checks passed: `pulumi up --stack {target.stack}` may go ahead."
    )
    return "\n".join(lines)
