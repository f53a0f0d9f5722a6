"""Each rule of the policy pack with a resource that passes and one that fails.

The rules are pure functions (`policy/rules.py`); the same cases also go through the
pulumi-policy adapter with a hand-built `ResourceValidationArgs`, the way the analyzer
calls them during `pulumi preview --policy-pack policy`.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UnknownValueError, unknown_checking_proxy

from policy import rules
from policy.policies import build_policies, to_policy

TAGS = {"project": "batchscore", "environment": "dev"}

STORAGE_OK = {
    "kind": "StorageV2",
    "minimumTlsVersion": "TLS1_2",
    "enableHttpsTrafficOnly": True,
    "allowBlobPublicAccess": False,
    "allowSharedKeyAccess": False,
    "tags": TAGS,
}
EVENTHUB_OK = {"minimumTlsVersion": "1.2", "disableLocalAuth": True, "tags": TAGS}
SQL_OK = {
    "minimalTlsVersion": "1.2",
    "administrators": {
        "administratorType": "ActiveDirectory",
        "azureADOnlyAuthentication": True,
        "login": "sql-admins",
        "sid": "00000000-0000-0000-0000-000000000001",
    },
    "tags": TAGS,
}
ACR_OK = {"adminUserEnabled": False, "sku": {"name": "Basic"}, "tags": TAGS}
VAULT_OK = {
    "properties": {
        "tenantId": "t",
        "sku": {"family": "A", "name": "standard"},
        "enableRbacAuthorization": True,
        "enablePurgeProtection": True,
    },
    "tags": TAGS,
}
COMPUTE_OK = {
    "identity": {"type": "UserAssigned", "userAssignedIdentities": ["<id>"]},
    "properties": {
        "computeType": "AmlCompute",
        "disableLocalAuth": True,
        "properties": {
            "vmSize": "STANDARD_DS3_V2",
            "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4},
        },
    },
    "tags": TAGS,
}
WORKSPACE_OK = {
    "identity": {"type": "SystemAssigned"},
    "systemDatastoresAuthMode": "identity",
    "tags": TAGS,
}
JOB_OK = {"identity": {"type": "SystemAssigned"}, "compatibilityLevel": "1.2", "tags": TAGS}
INPUT_OK = {
    "properties": {
        "type": "Stream",
        "datasource": {
            "type": "Microsoft.EventHub/EventHub",
            "authenticationMode": "Msi",
            "eventHubName": "sensor-readings",
        },
    }
}
OUTPUT_OK = {
    "datasource": {
        "type": "Microsoft.Sql/Server/Database",
        "authenticationMode": "Msi",
        "table": "SensorReadings",
    }
}
DATASTORE_OK = {
    "properties": {"datastoreType": "AzureBlob", "credentials": {"credentialsType": "None"}}
}


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the dotted `path` set to `value` (or removed if `...`)."""
    result = copy.deepcopy(base)
    node = result
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return result


# (rule, resource type, props, stack) that must pass.
PASSING = [
    ("minimum-tls-1-2", rules.STORAGE_ACCOUNT, STORAGE_OK, "dev"),
    ("minimum-tls-1-2", rules.EVENTHUB_NAMESPACE, EVENTHUB_OK, "dev"),
    ("minimum-tls-1-2", rules.SQL_SERVER, SQL_OK, "dev"),
    ("storage-https-only", rules.STORAGE_ACCOUNT, STORAGE_OK, "dev"),
    (
        "storage-https-only",
        rules.STORAGE_ACCOUNT,
        {**changed(STORAGE_OK, "enableHttpsTrafficOnly", ...), "supportsHttpsTrafficOnly": True},
        "dev",
    ),
    ("no-public-blob-access", rules.STORAGE_ACCOUNT, STORAGE_OK, "dev"),
    ("no-public-blob-access", rules.BLOB_CONTAINER, {"publicAccess": "None"}, "dev"),
    ("no-public-blob-access", rules.BLOB_CONTAINER, {}, "dev"),
    ("no-shared-keys-or-local-auth", rules.STORAGE_ACCOUNT, STORAGE_OK, "dev"),
    ("no-shared-keys-or-local-auth", rules.EVENTHUB_NAMESPACE, EVENTHUB_OK, "dev"),
    ("no-shared-keys-or-local-auth", rules.ML_COMPUTE, COMPUTE_OK, "dev"),
    ("no-shared-keys-or-local-auth", rules.ML_WORKSPACE, WORKSPACE_OK, "dev"),
    ("no-shared-keys-or-local-auth", rules.ML_DATASTORE, DATASTORE_OK, "dev"),
    ("no-admin-users", rules.CONTAINER_REGISTRY, ACR_OK, "dev"),
    ("no-admin-users", rules.SQL_SERVER, SQL_OK, "dev"),
    ("sql-entra-only-auth", rules.SQL_SERVER, SQL_OK, "dev"),
    ("sql-entra-only-auth", rules.SQL_AAD_ONLY_AUTH, {"azureADOnlyAuthentication": True}, "dev"),
    ("key-vault-rbac-purge-protection", rules.KEY_VAULT, VAULT_OK, "dev"),
    ("managed-identities", rules.ML_COMPUTE, COMPUTE_OK, "dev"),
    ("managed-identities", rules.ML_WORKSPACE, WORKSPACE_OK, "dev"),
    ("managed-identities", rules.STREAMING_JOB, JOB_OK, "dev"),
    ("managed-identities", rules.STREAMING_INPUT, INPUT_OK, "dev"),
    ("managed-identities", rules.STREAMING_OUTPUT, OUTPUT_OK, "dev"),
    ("required-tags", rules.STORAGE_ACCOUNT, STORAGE_OK, "dev"),
    ("required-tags", "azure-native:storage:BlobContainer", {"publicAccess": "None"}, "dev"),
    ("required-tags", "pulumi-python:dynamic:Resource", {}, "dev"),
    ("dev-cluster-scales-to-zero", rules.ML_COMPUTE, COMPUTE_OK, "dev"),
    (
        "dev-cluster-scales-to-zero",
        rules.ML_COMPUTE,
        changed(  # a prod cluster is also private (private-network-in-prod)
            changed(COMPUTE_OK, "properties.properties.enableNodePublicIp", False),
            "properties.properties.scaleSettings.minNodeCount",
            2,
        ),
        "prod",
    ),
    (
        "dev-cluster-scales-to-zero",
        rules.ML_COMPUTE,
        changed(COMPUTE_OK, "properties.properties.scaleSettings.minNodeCount", ...),
        "dev",
    ),
]

# Private networking (rule private-network-in-prod): what the prod stack declares.
PRIVATE_STORAGE = changed(
    STORAGE_OK,
    "networkRuleSet",
    {"defaultAction": "Deny", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []},
)
PRIVATE_WORKSPACE = {
    **WORKSPACE_OK,
    "publicNetworkAccess": "Disabled",
    "managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"},
}
PRIVATE_COMPUTE = changed(COMPUTE_OK, "properties.properties.enableNodePublicIp", False)
PRIVATE_JOB = {**JOB_OK, "cluster": {"id": "/subscriptions/s/.../clusters/stream-cluster"}}
PASSING += [
    ("private-network-in-prod", rules.STORAGE_ACCOUNT, STORAGE_OK, "dev"),
    ("private-network-in-prod", rules.SQL_SERVER, SQL_OK, "dev"),
    ("private-network-in-prod", rules.STORAGE_ACCOUNT, PRIVATE_STORAGE, "prod"),
    (
        "private-network-in-prod",
        rules.STORAGE_ACCOUNT,
        {**STORAGE_OK, "publicNetworkAccess": "Disabled"},
        "prod",
    ),
    ("private-network-in-prod", rules.ML_WORKSPACE, PRIVATE_WORKSPACE, "prod"),
    ("private-network-in-prod", rules.ML_COMPUTE, PRIVATE_COMPUTE, "prod"),
    ("private-network-in-prod", rules.STREAMING_JOB, PRIVATE_JOB, "prod"),
    (
        "private-network-in-prod",
        rules.SQL_SERVER,
        {**SQL_OK, "publicNetworkAccess": "Disabled"},
        "prod",
    ),
]

# (rule, resource type, props, a phrase the message must contain): in stack prod.
FAILING_IN_PROD = [
    ("private-network-in-prod", rules.STORAGE_ACCOUNT, STORAGE_OK, "defaultAction is not set"),
    (
        "private-network-in-prod",
        rules.STORAGE_ACCOUNT,
        changed(PRIVATE_STORAGE, "networkRuleSet.ipRules", [{"value": "203.0.113.7"}]),
        "networkRuleSet.ipRules is not empty",
    ),
    (
        "private-network-in-prod",
        rules.SQL_SERVER,
        {**SQL_OK, "publicNetworkAccess": "Enabled"},
        "publicNetworkAccess is 'Enabled'; must be 'Disabled'",
    ),
    ("private-network-in-prod", rules.EVENTHUB_NAMESPACE, EVENTHUB_OK, "publicNetworkAccess"),
    ("private-network-in-prod", rules.CONTAINER_REGISTRY, ACR_OK, "publicNetworkAccess"),
    ("private-network-in-prod", rules.KEY_VAULT, VAULT_OK, "properties.publicNetworkAccess"),
    (
        "private-network-in-prod",
        rules.ML_WORKSPACE,
        changed(PRIVATE_WORKSPACE, "managedNetwork.isolationMode", "AllowInternetOutbound"),
        "managedNetwork.isolationMode is 'AllowInternetOutbound'",
    ),
    ("private-network-in-prod", rules.ML_COMPUTE, COMPUTE_OK, "enableNodePublicIp is not set"),
    ("private-network-in-prod", rules.STREAMING_JOB, JOB_OK, "cluster.id is not set"),
    ("private-network-in-prod", rules.SQL_FIREWALL_RULE, {}, "SQL firewall rule"),
]

# (rule, resource type, props, stack, a phrase the message must contain).
FAILING = [
    (
        "minimum-tls-1-2",
        rules.STORAGE_ACCOUNT,
        changed(STORAGE_OK, "minimumTlsVersion", "TLS1_0"),
        "minimumTlsVersion is 'TLS1_0'",
    ),
    (
        "minimum-tls-1-2",
        rules.STORAGE_ACCOUNT,
        changed(STORAGE_OK, "minimumTlsVersion", ...),
        "minimumTlsVersion is not set",
    ),
    (
        "minimum-tls-1-2",
        rules.EVENTHUB_NAMESPACE,
        changed(EVENTHUB_OK, "minimumTlsVersion", "1.1"),
        "minimumTlsVersion is '1.1'",
    ),
    (
        "minimum-tls-1-2",
        rules.SQL_SERVER,
        changed(SQL_OK, "minimalTlsVersion", "1.0"),
        "minimalTlsVersion is '1.0'",
    ),
    (
        "storage-https-only",
        rules.STORAGE_ACCOUNT,
        changed(STORAGE_OK, "enableHttpsTrafficOnly", False),
        "enableHttpsTrafficOnly is False",
    ),
    (
        "no-public-blob-access",
        rules.STORAGE_ACCOUNT,
        changed(STORAGE_OK, "allowBlobPublicAccess", True),
        "allowBlobPublicAccess is True",
    ),
    (
        "no-public-blob-access",
        rules.STORAGE_ACCOUNT,
        changed(STORAGE_OK, "allowBlobPublicAccess", ...),
        "allowBlobPublicAccess is not set",
    ),
    (
        "no-public-blob-access",
        rules.BLOB_CONTAINER,
        {"publicAccess": "Container"},
        "publicAccess is 'Container'",
    ),
    (
        "no-shared-keys-or-local-auth",
        rules.STORAGE_ACCOUNT,
        changed(STORAGE_OK, "allowSharedKeyAccess", ...),
        "allowSharedKeyAccess is not set",
    ),
    (
        "no-shared-keys-or-local-auth",
        rules.EVENTHUB_NAMESPACE,
        changed(EVENTHUB_OK, "disableLocalAuth", False),
        "disableLocalAuth is False",
    ),
    (
        "no-shared-keys-or-local-auth",
        rules.ML_COMPUTE,
        changed(COMPUTE_OK, "properties.disableLocalAuth", False),
        "properties.disableLocalAuth is False",
    ),
    (
        "no-shared-keys-or-local-auth",
        rules.ML_WORKSPACE,
        changed(WORKSPACE_OK, "systemDatastoresAuthMode", "accesskey"),
        "systemDatastoresAuthMode is 'accesskey'",
    ),
    (
        "no-shared-keys-or-local-auth",
        rules.ML_DATASTORE,
        changed(DATASTORE_OK, "properties.credentials.credentialsType", "AccountKey"),
        "credentialsType is 'AccountKey'",
    ),
    (
        "no-admin-users",
        rules.CONTAINER_REGISTRY,
        changed(ACR_OK, "adminUserEnabled", True),
        "adminUserEnabled is True",
    ),
    (
        "no-admin-users",
        rules.CONTAINER_REGISTRY,
        changed(ACR_OK, "anonymousPullEnabled", True),
        "anonymousPullEnabled is True",
    ),
    (
        "no-admin-users",
        rules.SQL_SERVER,
        {**SQL_OK, "administratorLogin": "sqladmin", "administratorLoginPassword": "x"},
        "administratorLoginPassword is set",
    ),
    (
        "sql-entra-only-auth",
        rules.SQL_SERVER,
        changed(SQL_OK, "administrators.azureADOnlyAuthentication", False),
        "administrators.azureADOnlyAuthentication is False",
    ),
    (
        "sql-entra-only-auth",
        rules.SQL_SERVER,
        changed(SQL_OK, "administrators", ...),
        "administrators.administratorType is not set",
    ),
    (
        "sql-entra-only-auth",
        rules.SQL_AAD_ONLY_AUTH,
        {"azureADOnlyAuthentication": False},
        "azureADOnlyAuthentication is False",
    ),
    (
        "key-vault-rbac-purge-protection",
        rules.KEY_VAULT,
        changed(VAULT_OK, "properties.enableRbacAuthorization", False),
        "enableRbacAuthorization is False",
    ),
    (
        "key-vault-rbac-purge-protection",
        rules.KEY_VAULT,
        changed(VAULT_OK, "properties.enablePurgeProtection", ...),
        "enablePurgeProtection is not set",
    ),
    (
        "key-vault-rbac-purge-protection",
        rules.KEY_VAULT,
        changed(VAULT_OK, "properties.accessPolicies", [{"objectId": "x"}]),
        "accessPolicies is not empty",
    ),
    (
        "managed-identities",
        rules.ML_COMPUTE,
        changed(COMPUTE_OK, "identity", ...),
        "identity.type is not set",
    ),
    (
        "managed-identities",
        rules.ML_WORKSPACE,
        changed(WORKSPACE_OK, "identity.type", "None"),
        "identity.type is 'None'",
    ),
    (
        "managed-identities",
        rules.STREAMING_JOB,
        changed(JOB_OK, "identity", ...),
        "identity.type is not set",
    ),
    (
        "managed-identities",
        rules.STREAMING_INPUT,
        changed(INPUT_OK, "properties.datasource.authenticationMode", "ConnectionString"),
        "authenticationMode is 'ConnectionString'",
    ),
    (
        "managed-identities",
        rules.STREAMING_OUTPUT,
        changed(OUTPUT_OK, "datasource.password", "hunter2"),
        "datasource.password is set",
    ),
    (
        "required-tags",
        rules.STORAGE_ACCOUNT,
        changed(STORAGE_OK, "tags", {"project": "batchscore"}),
        "tags lack environment",
    ),
    (
        "required-tags",
        rules.KEY_VAULT,
        changed(VAULT_OK, "tags", ...),
        "tags is not set",
    ),
    (
        "required-tags",
        rules.STORAGE_ACCOUNT,
        changed(STORAGE_OK, "tags", {"project": "batchscore", "environment": " "}),
        "tags lack environment",
    ),
    (
        "dev-cluster-scales-to-zero",
        rules.ML_COMPUTE,
        changed(COMPUTE_OK, "properties.properties.scaleSettings.minNodeCount", 1),
        "minNodeCount is 1; must be 0 in stack 'dev'",
    ),
]


def test_every_rule_has_a_passing_and_a_failing_case() -> None:
    names = {rule.name for rule in rules.RULES}
    assert names == {case[0] for case in PASSING}, "a rule has no passing case"
    failing = {case[0] for case in FAILING} | {case[0] for case in FAILING_IN_PROD}
    assert names == failing, "a rule has no failing case"


@pytest.mark.parametrize(("rule_name", "resource_type", "props", "stack"), PASSING)
def test_compliant_resource_passes(
    rule_name: str, resource_type: str, props: dict, stack: str
) -> None:
    assert rules.RULES_BY_NAME[rule_name](resource_type, props, stack) == []


@pytest.mark.parametrize(("rule_name", "resource_type", "props", "phrase"), FAILING)
def test_violating_resource_fails_with_a_message_naming_the_property(
    rule_name: str, resource_type: str, props: dict, phrase: str
) -> None:
    messages = rules.RULES_BY_NAME[rule_name](resource_type, props, "dev")
    assert messages, f"{rule_name} let a violating {resource_type} pass"
    assert any(phrase in message for message in messages), messages


@pytest.mark.parametrize(("rule_name", "resource_type", "props", "phrase"), FAILING_IN_PROD)
def test_a_public_resource_fails_in_prod_and_passes_where_stacks_may_be_public(
    rule_name: str, resource_type: str, props: dict, phrase: str
) -> None:
    rule = rules.RULES_BY_NAME[rule_name]
    messages = rule(resource_type, props, "prod")
    assert any(phrase in message for message in messages), messages
    assert rule(resource_type, props, "dev") == []
    # The private stacks come from the policy config, like the always-on stacks.
    assert rule(resource_type, props, "prod", {"privateStacks": ["staging"]}) == []
    assert rule(resource_type, props, "staging", {"privateStacks": ["staging"]})


@pytest.mark.parametrize(("rule_name", "resource_type", "props", "stack"), PASSING)
def test_compliant_resources_pass_every_rule_of_the_pack(
    rule_name: str, resource_type: str, props: dict, stack: str
) -> None:
    """The good fixtures are good for the whole pack, not just the rule they illustrate."""
    assert rules.evaluate(resource_type, props, stack) == []


def test_a_truthy_lookalike_is_not_accepted_for_a_boolean() -> None:
    props = changed(STORAGE_OK, "allowSharedKeyAccess", 0)
    assert rules.RULES_BY_NAME["no-shared-keys-or-local-auth"](rules.STORAGE_ACCOUNT, props, "dev")


def test_required_tags_come_from_the_policy_config() -> None:
    rule = rules.RULES_BY_NAME["required-tags"]
    config = {"requiredTags": ["project", "environment", "owner"]}
    assert rule(rules.STORAGE_ACCOUNT, STORAGE_OK, "dev", config) == [
        "tags lack owner (required: project, environment, owner)"
    ]
    assert rule(rules.STORAGE_ACCOUNT, STORAGE_OK, "dev", {"requiredTags": ["project"]}) == []


def test_always_on_stacks_come_from_the_policy_config() -> None:
    rule = rules.RULES_BY_NAME["dev-cluster-scales-to-zero"]
    warm = changed(COMPUTE_OK, "properties.properties.scaleSettings.minNodeCount", 1)
    assert rule(rules.ML_COMPUTE, warm, "staging", {"alwaysOnStacks": ["prod", "staging"]}) == []
    assert rule(rules.ML_COMPUTE, warm, "prod", {"alwaysOnStacks": ["staging"]})


def test_stack_name_is_read_from_the_urn() -> None:
    urn = "urn:pulumi:prod::batchscore::batchscore:index:MlWorkspace$azure-native:x:Y::cluster"
    assert rules.stack_from_urn(urn) == "prod"
    with pytest.raises(ValueError, match="not a Pulumi URN"):
        rules.stack_from_urn("prod/cluster")


# --- through the pulumi-policy adapter ----------------------------------------------------
def validation_args(
    resource_type: str, props: Any, stack: str, name: str = "res", config: dict | None = None
) -> ResourceValidationArgs:
    options = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )
    urn = f"urn:pulumi:{stack}::batchscore::{resource_type}::{name}"
    return ResourceValidationArgs(resource_type, props, urn, name, options, None, config)


def run_policy(policy, args: ResourceValidationArgs) -> list[str]:
    reported: list[str] = []
    policy.validate(args, lambda message, urn=None: reported.append(message))
    return reported


@pytest.mark.parametrize(("rule_name", "resource_type", "props", "stack"), PASSING)
def test_adapter_passes_compliant_resources(
    rule_name: str, resource_type: str, props: dict, stack: str
) -> None:
    policy = to_policy(rules.RULES_BY_NAME[rule_name])
    args = validation_args(resource_type, unknown_checking_proxy(props), stack)
    assert run_policy(policy, args) == []


@pytest.mark.parametrize(("rule_name", "resource_type", "props", "phrase"), FAILING)
def test_adapter_reports_violations_with_resource_name(
    rule_name: str, resource_type: str, props: dict, phrase: str
) -> None:
    policy = to_policy(rules.RULES_BY_NAME[rule_name])
    args = validation_args(resource_type, unknown_checking_proxy(props), "dev", name="scoring")
    reported = run_policy(policy, args)
    assert reported, f"{rule_name} reported nothing for a violating {resource_type}"
    assert all(message.startswith("scoring: ") for message in reported), reported
    assert any(phrase in message for message in reported), reported


def test_adapter_reads_the_stack_from_the_urn_and_the_config_from_the_pack() -> None:
    policy = to_policy(rules.RULES_BY_NAME["dev-cluster-scales-to-zero"])
    warm = changed(COMPUTE_OK, "properties.properties.scaleSettings.minNodeCount", 1)
    assert run_policy(policy, validation_args(rules.ML_COMPUTE, warm, "prod")) == []
    assert run_policy(policy, validation_args(rules.ML_COMPUTE, warm, "dev"))
    args = validation_args(rules.ML_COMPUTE, warm, "dev", config={"alwaysOnStacks": ["dev"]})
    assert run_policy(policy, args) == []


def test_unknown_values_during_preview_surface_as_the_sdk_expects() -> None:
    """An input not known until deploy raises the SDK's UnknownValueError (reported as advisory)."""
    unknown = changed(STORAGE_OK, "allowSharedKeyAccess", UNKNOWN_BOOLEAN_VALUE)
    props = unknown_checking_proxy(unknown)
    policy = to_policy(rules.RULES_BY_NAME["no-shared-keys-or-local-auth"])
    with pytest.raises(UnknownValueError):
        run_policy(policy, validation_args(rules.STORAGE_ACCOUNT, props, "dev"))


def test_every_policy_is_mandatory_and_named_after_its_rule() -> None:
    policies = build_policies()
    assert [p.name for p in policies] == [rule.name for rule in rules.RULES]
    assert all(p.enforcement_level.value == "mandatory" for p in policies)
    assert len({p.name for p in policies}) == len(policies)


@pytest.mark.parametrize(("rule_name", "resource_type", "props", "phrase"), FAILING_IN_PROD)
def test_adapter_refuses_a_public_resource_of_the_prod_stack(
    rule_name: str, resource_type: str, props: dict, phrase: str
) -> None:
    policy = to_policy(rules.RULES_BY_NAME[rule_name])
    prod = validation_args(resource_type, unknown_checking_proxy(props), "prod", name="svc")
    reported = run_policy(policy, prod)
    assert any(m.startswith("svc: ") and phrase in m for m in reported), reported
    dev = validation_args(resource_type, unknown_checking_proxy(props), "dev", name="svc")
    assert run_policy(policy, dev) == []
