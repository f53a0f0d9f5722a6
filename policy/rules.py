"""The security baseline as pure functions over (resource type, inputs, stack).

Each rule looks at the inputs of one resource the way the Pulumi engine sends them
(camelCase keys of pulumi-azure-native v3, nested objects as mappings) and returns a
list of violation messages; an empty list means the resource complies or the rule does
not apply to it. Nothing here imports Pulumi, so the rules run in plain pytest, against
the offline plans (`build/plan-<stack>.json`) and, through the thin adapter in
`policies.py`, inside `pulumi preview --policy-pack policy`.

Where Azure's default for a property is insecure (or has changed between API
versions), a rule asks for the value to be set explicitly; where the default is secure
(anonymous pull off, scale-down to zero nodes), only an explicitly insecure value fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Props = Mapping[str, Any]

# --- resource types (pulumi-azure-native v3 tokens) -------------------------------------
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
EVENTHUB_NAMESPACE = "azure-native:eventhub:Namespace"
SQL_SERVER = "azure-native:sql:Server"
SQL_AAD_ONLY_AUTH = "azure-native:sql:ServerAzureADOnlyAuthentication"
CONTAINER_REGISTRY = "azure-native:containerregistry:Registry"
KEY_VAULT = "azure-native:keyvault:Vault"
ML_WORKSPACE = "azure-native:machinelearningservices:Workspace"
ML_COMPUTE = "azure-native:machinelearningservices:Compute"
ML_DATASTORE = "azure-native:machinelearningservices:Datastore"
STREAMING_JOB = "azure-native:streamanalytics:StreamingJob"
STREAMING_INPUT = "azure-native:streamanalytics:Input"
STREAMING_OUTPUT = "azure-native:streamanalytics:Output"
SQL_FIREWALL_RULE = "azure-native:sql:FirewallRule"

# Tracked ARM resources (they carry `tags`) that this kind of stack uses. Kept as a list
# rather than discovered from pulumi-azure-native so the pack does not need that SDK;
# tests/policy/test_plans.py checks the list against the SDK for every type in the plans.
TAGGABLE_TYPES: frozenset[str] = frozenset(
    {
        "azure-native:resources:ResourceGroup",
        STORAGE_ACCOUNT,
        EVENTHUB_NAMESPACE,
        STREAMING_JOB,
        SQL_SERVER,
        "azure-native:sql:Database",
        CONTAINER_REGISTRY,
        KEY_VAULT,
        "azure-native:operationalinsights:Workspace",
        "azure-native:applicationinsights:Component",
        ML_WORKSPACE,
        ML_COMPUTE,
        "azure-native:managedidentity:UserAssignedIdentity",
        "azure-native:monitor:ActionGroup",
        "azure-native:monitor:ScheduledQueryRule",
        "azure-native:monitor:MetricAlert",
        "azure-native:monitor:ActivityLogAlert",
        "azure-native:applicationinsights:Workbook",
        # private networking (prod)
        "azure-native:network:VirtualNetwork",
        "azure-native:network:PrivateEndpoint",
        "azure-native:privatedns:PrivateZone",
        "azure-native:privatedns:VirtualNetworkLink",
        "azure-native:streamanalytics:Cluster",
    }
)

DEFAULT_REQUIRED_TAGS: tuple[str, ...] = ("project", "environment")
DEFAULT_ALWAYS_ON_STACKS: tuple[str, ...] = ("prod",)
# Stacks whose services must not be reachable from the internet (config `networkIsolation`).
DEFAULT_PRIVATE_STACKS: tuple[str, ...] = ("prod",)

# Stream Analytics data sources that can authenticate with the job's managed identity.
MSI_CAPABLE_DATASOURCES: frozenset[str] = frozenset(
    {
        "Microsoft.ServiceBus/EventHub",
        "Microsoft.EventHub/EventHub",
        "Microsoft.Sql/Server/Database",
        "Microsoft.Storage/Blob",
        "Microsoft.Storage/DataLake",
    }
)

_MISSING = object()


@dataclass(frozen=True)
class RuleContext:
    """Where a resource is evaluated: its stack and the rule's policy-pack config."""

    stack: str
    config: Mapping[str, Any] = field(default_factory=dict)


Check = Callable[[str, Props, RuleContext], list[str]]


@dataclass(frozen=True)
class Rule:
    """One policy of the pack: a kebab-case name, what it asks, and its check."""

    name: str
    description: str
    check: Check
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __call__(
        self, resource_type: str, props: Props, stack: str, config: Mapping[str, Any] | None = None
    ) -> list[str]:
        return self.check(resource_type, props, RuleContext(stack, config or {}))


# --- helpers ------------------------------------------------------------------------------
def lookup(props: Props, path: str) -> Any:
    """The value at a dotted path (`properties.scaleSettings.minNodeCount`), or `_MISSING`."""
    node: Any = props
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _shown(value: Any) -> str:
    return "not set" if value is _MISSING or value is None else f"{value!r}"


def _require(props: Props, path: str, allowed: Iterable[Any], why: str) -> list[str]:
    """A violation unless the property is set to one of the allowed values."""
    allowed = tuple(allowed)
    value = lookup(props, path)
    # bool is an int subclass: compare types too, so True never stands for 1 or vice versa.
    if value is not _MISSING and any(type(value) is type(a) and value == a for a in allowed):
        return []
    wanted = " or ".join(repr(a) for a in allowed)
    return [f"{path} is {_shown(value)}; must be {wanted} ({why})"]


def _forbid(props: Props, path: str, forbidden: Iterable[Any], why: str) -> list[str]:
    """A violation only if the property is explicitly set to a forbidden value."""
    value = lookup(props, path)
    if value is not _MISSING and value in tuple(forbidden):
        return [f"{path} is {value!r}; must not be ({why})"]
    return []


def _absent(props: Props, path: str, why: str) -> list[str]:
    value = lookup(props, path)
    if value is _MISSING or value is None or value == "":
        return []
    return [f"{path} is set; must be left out ({why})"]


def _string_list(value: Any, default: Sequence[str]) -> list[str]:
    if value is None or value is _MISSING:
        return list(default)
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


# --- the rules ----------------------------------------------------------------------------
def check_minimum_tls(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    why = "TLS 1.0 and 1.1 are broken; clients must use TLS 1.2 or newer"
    if resource_type == STORAGE_ACCOUNT:
        return _require(props, "minimumTlsVersion", ("TLS1_2", "TLS1_3"), why)
    if resource_type == EVENTHUB_NAMESPACE:
        return _require(props, "minimumTlsVersion", ("1.2", "1.3"), why)
    if resource_type == SQL_SERVER:
        return _require(props, "minimalTlsVersion", ("1.2", "1.3"), why)
    return []


def check_storage_https_only(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    if resource_type != STORAGE_ACCOUNT:
        return []
    # azure-native v3 names ARM's supportsHttpsTrafficOnly `enableHttpsTrafficOnly`.
    path = "enableHttpsTrafficOnly"
    if "enableHttpsTrafficOnly" not in props and "supportsHttpsTrafficOnly" in props:
        path = "supportsHttpsTrafficOnly"
    return _require(props, path, (True,), "plain HTTP would carry data and tokens in clear")


def check_no_public_blob(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    if resource_type == STORAGE_ACCOUNT:
        return _require(
            props,
            "allowBlobPublicAccess",
            (False,),
            "no container of this account may ever be readable anonymously",
        )
    if resource_type == BLOB_CONTAINER:
        return _forbid(props, "publicAccess", ("Blob", "Container"), "anonymous read access")
    return []


def check_no_shared_keys(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    """Keys and local accounts off everywhere: access goes through Entra ID and RBAC."""
    if resource_type == STORAGE_ACCOUNT:
        return _require(
            props, "allowSharedKeyAccess", (False,), "account keys and SAS bypass Entra ID and RBAC"
        )
    if resource_type == EVENTHUB_NAMESPACE:
        return _require(props, "disableLocalAuth", (True,), "SAS keys bypass Entra ID and RBAC")
    if resource_type == ML_COMPUTE and lookup(props, "properties.computeType") == "AmlCompute":
        return _require(
            props,
            "properties.disableLocalAuth",
            (True,),
            "local auth lets jobs run with keys instead of the cluster's identity",
        )
    if resource_type == ML_WORKSPACE:
        return _require(
            props,
            "systemDatastoresAuthMode",
            ("identity",),
            "the storage account refuses shared keys, so the workspace datastores must use "
            "identities",
        )
    if resource_type == ML_DATASTORE:
        return _forbid(
            props,
            "properties.credentials.credentialsType",
            ("AccountKey", "Sas"),
            "datastores reach storage with the caller's or the compute's identity",
        )
    return []


def check_no_admin_users(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    if resource_type == CONTAINER_REGISTRY:
        return _require(
            props, "adminUserEnabled", (False,), "the admin user is a shared password; use AcrPull"
        ) + _forbid(props, "anonymousPullEnabled", (True,), "images would be public")
    if resource_type == SQL_SERVER:
        why = "SQL logins are passwords; the server takes Entra identities only"
        return _absent(props, "administratorLogin", why) + _absent(
            props, "administratorLoginPassword", why
        )
    return []


def check_sql_entra_only(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    if resource_type == SQL_SERVER:
        why = "only Entra ID principals may sign in"
        return _require(props, "administrators.azureADOnlyAuthentication", (True,), why) + _require(
            props, "administrators.administratorType", ("ActiveDirectory",), why
        )
    if resource_type == SQL_AAD_ONLY_AUTH:
        return _require(
            props, "azureADOnlyAuthentication", (True,), "only Entra ID principals may sign in"
        )
    return []


def check_key_vault(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    if resource_type != KEY_VAULT:
        return []
    violations = _require(
        props,
        "properties.enableRbacAuthorization",
        (True,),
        "access is granted by Azure RBAC, not vault access policies",
    ) + _require(
        props,
        "properties.enablePurgeProtection",
        (True,),
        "deleted secrets and keys must stay recoverable",
    )
    policies = lookup(props, "properties.accessPolicies")
    if policies is not _MISSING and policies:
        violations.append(
            "properties.accessPolicies is not empty; must be (access is granted by Azure RBAC)"
        )
    return violations


def check_managed_identities(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    """Workloads authenticate as managed identities, never with stored credentials."""
    identity_types = (
        "SystemAssigned",
        "UserAssigned",
        "SystemAssigned,UserAssigned",
        "SystemAssigned, UserAssigned",
    )
    if resource_type in (ML_COMPUTE, ML_WORKSPACE, STREAMING_JOB):
        return _require(
            props, "identity.type", identity_types, "it reaches other services as itself"
        )
    if resource_type in (STREAMING_INPUT, STREAMING_OUTPUT):
        base = "properties.datasource" if resource_type == STREAMING_INPUT else "datasource"
        if lookup(props, f"{base}.type") not in MSI_CAPABLE_DATASOURCES:
            return []
        why = "the job reads and writes with its own identity, not keys or passwords"
        return (
            _require(props, f"{base}.authenticationMode", ("Msi",), why)
            + _absent(props, f"{base}.sharedAccessPolicyKey", why)
            + _absent(props, f"{base}.password", why)
            + _absent(props, f"{base}.accountKey", why)
        )
    return []


def check_required_tags(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    """Taggable Azure resources carry the tags cost and ownership reports group by."""
    if not resource_type.startswith("azure-native:"):
        return []
    tags = lookup(props, "tags")
    if resource_type not in TAGGABLE_TYPES and tags is _MISSING:
        return []
    required = _string_list(ctx.config.get("requiredTags"), DEFAULT_REQUIRED_TAGS)
    if not isinstance(tags, Mapping):
        return [f"tags is {_shown(tags)}; must carry {', '.join(required)}"]
    missing = [key for key in required if not str(tags.get(key) or "").strip()]
    if missing:
        return [f"tags lack {', '.join(missing)} (required: {', '.join(required)})"]
    return []


def check_dev_scales_to_zero(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    """Outside the always-on stacks an idle cluster costs nothing: it must shrink to 0 nodes."""
    if resource_type != ML_COMPUTE or lookup(props, "properties.computeType") != "AmlCompute":
        return []
    always_on = _string_list(ctx.config.get("alwaysOnStacks"), DEFAULT_ALWAYS_ON_STACKS)
    if ctx.stack in always_on:
        return []
    path = "properties.properties.scaleSettings.minNodeCount"
    value = lookup(props, path)
    if value is _MISSING or value == 0:  # ARM's default minimum is 0 nodes
        return []
    return [
        f"{path} is {value!r}; must be 0 in stack {ctx.stack!r} "
        f"(only {', '.join(always_on)} may keep nodes warm)"
    ]


def check_private_network(resource_type: str, props: Props, ctx: RuleContext) -> list[str]:
    """In the private stacks no service of the stack answers on a public address: public
    network access off (storage may keep it for trusted Azure services only, behind a firewall
    that denies everything else), the ML workspace's managed network approved-outbound only,
    cluster nodes without public IPs, no SQL firewall rule, the Stream Analytics job on its
    dedicated cluster (whose managed private endpoints reach Event Hubs and SQL)."""
    private = _string_list(ctx.config.get("privateStacks"), DEFAULT_PRIVATE_STACKS)
    if ctx.stack not in private:
        return []
    why = f"stack {ctx.stack!r} is reachable through its private endpoints only"
    if resource_type in (EVENTHUB_NAMESPACE, SQL_SERVER, CONTAINER_REGISTRY):
        return _require(props, "publicNetworkAccess", ("Disabled",), why)
    if resource_type == KEY_VAULT:
        return _require(props, "properties.publicNetworkAccess", ("Disabled",), why)
    if resource_type == ML_WORKSPACE:
        return _require(props, "publicNetworkAccess", ("Disabled",), why) + _require(
            props,
            "managedNetwork.isolationMode",
            ("AllowOnlyApprovedOutbound",),
            "the cluster may reach only the services the stack approves",
        )
    if resource_type == ML_COMPUTE and lookup(props, "properties.computeType") == "AmlCompute":
        return _require(
            props, "properties.properties.enableNodePublicIp", (False,), "nodes get no public IP"
        )
    if resource_type == STORAGE_ACCOUNT:
        if lookup(props, "publicNetworkAccess") == "Disabled":
            return []
        violations = _require(props, "networkRuleSet.defaultAction", ("Deny",), why)
        for rules in ("networkRuleSet.ipRules", "networkRuleSet.virtualNetworkRules"):
            value = lookup(props, rules)  # truthiness: the analyzer hands over list proxies
            if value is not _MISSING and value:
                violations.append(f"{rules} is not empty; must be ({why})")
        return violations
    if resource_type == SQL_FIREWALL_RULE:
        return [f"a SQL firewall rule opens the server's public endpoint; must not exist ({why})"]
    if resource_type == STREAMING_JOB:
        if lookup(props, "cluster.id") in (_MISSING, None, ""):
            return [
                "cluster.id is not set; must name the stack's Stream Analytics cluster (its "
                "managed private endpoints reach Event Hubs and SQL privately)"
            ]
    return []


_TAG_SCHEMA = {"type": "array", "items": {"type": "string"}}

RULES: tuple[Rule, ...] = (
    Rule(
        "minimum-tls-1-2",
        "Storage, Event Hubs and SQL accept TLS 1.2 or newer only.",
        check_minimum_tls,
    ),
    Rule(
        "storage-https-only",
        "Storage accounts refuse plain HTTP.",
        check_storage_https_only,
    ),
    Rule(
        "no-public-blob-access",
        "No storage account or container allows anonymous blob reads.",
        check_no_public_blob,
    ),
    Rule(
        "no-shared-keys-or-local-auth",
        "Storage, Event Hubs and the AML cluster refuse keys and local accounts; "
        "AML datastores use identities.",
        check_no_shared_keys,
    ),
    Rule(
        "no-admin-users",
        "No container-registry admin user or anonymous pull, no SQL login or password.",
        check_no_admin_users,
    ),
    Rule(
        "sql-entra-only-auth",
        "SQL servers authenticate Entra ID principals only.",
        check_sql_entra_only,
    ),
    Rule(
        "key-vault-rbac-purge-protection",
        "Key vaults use Azure RBAC (no access policies) and purge protection.",
        check_key_vault,
    ),
    Rule(
        "managed-identities",
        "AML workspace and cluster and the Stream Analytics job run as managed identities; "
        "Stream Analytics inputs and outputs authenticate with them.",
        check_managed_identities,
    ),
    Rule(
        "required-tags",
        "Taggable Azure resources carry the required tags.",
        check_required_tags,
        {"requiredTags": {**_TAG_SCHEMA, "default": list(DEFAULT_REQUIRED_TAGS)}},
    ),
    Rule(
        "dev-cluster-scales-to-zero",
        "AmlCompute clusters scale to zero nodes except in the always-on stacks.",
        check_dev_scales_to_zero,
        {"alwaysOnStacks": {**_TAG_SCHEMA, "default": list(DEFAULT_ALWAYS_ON_STACKS)}},
    ),
    Rule(
        "private-network-in-prod",
        "In the private stacks, storage, Event Hubs, SQL, the registry, Key Vault and the ML "
        "workspace refuse public networks, the workspace's managed network allows approved "
        "outbound only, cluster nodes have no public IP, no SQL firewall rule exists and the "
        "Stream Analytics job runs on its private cluster.",
        check_private_network,
        {"privateStacks": {**_TAG_SCHEMA, "default": list(DEFAULT_PRIVATE_STACKS)}},
    ),
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}


@dataclass(frozen=True)
class Violation:
    """One broken rule on one resource, as the plan check reports it."""

    resource: str
    resource_type: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource} ({self.resource_type}) breaks {self.rule}: {self.message}"


def evaluate(
    resource_type: str,
    props: Props,
    stack: str,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    name: str = "",
) -> list[Violation]:
    """Every rule of the pack on one resource; `config` maps rule name to that rule's config."""
    config = config or {}
    return [
        Violation(name, resource_type, rule.name, message)
        for rule in RULES
        for message in rule(resource_type, props, stack, config.get(rule.name))
    ]


def evaluate_plan(
    plan: Mapping[str, Any], config: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Violation]:
    """Every rule on every resource of an offline plan (`{"stack", "resources": [...]}`)."""
    stack = plan.get("stack")
    if not isinstance(stack, str) or not stack:
        raise ValueError("plan has no 'stack' name")
    resources = plan.get("resources")
    if not isinstance(resources, list):
        raise ValueError(f"plan of stack {stack!r} has no 'resources' list")
    violations: list[Violation] = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, Mapping) or not isinstance(resource.get("type"), str):
            raise ValueError(f"plan of stack {stack!r}: resource #{index} has no 'type'")
        name = str(resource.get("name") or f"#{index}")
        inputs = resource.get("inputs") or {}
        violations += evaluate(resource["type"], inputs, stack, config, name)
    return violations


def stack_from_urn(urn: str) -> str:
    """The stack name inside a Pulumi URN (`urn:pulumi:<stack>::<project>::<type>::<name>`)."""
    prefix = "urn:pulumi:"
    if not urn.startswith(prefix) or "::" not in urn:
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    return urn[len(prefix) :].split("::", 1)[0]
