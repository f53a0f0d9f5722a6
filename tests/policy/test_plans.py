"""The dev and prod offline plans pass the whole policy pack.

`make plan STACK=<stack>` writes `build/plan-<stack>.json`; the snapshots in
`tests/snapshots/plan-<stack>.json` are what the pull request reviews. Every resource
of both goes through every rule, exactly as `pulumi preview --policy-pack policy` would
send it. A violation fails with the resource, its type, the rule and the property.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from pathlib import Path

import pytest

from policy import rules

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
STACKS = ("dev", "prod")


def load_plan(stack: str) -> dict:
    path = SNAPSHOTS / f"plan-{stack}.json"
    if not path.exists():
        pytest.fail(f"{path.name} is missing: run `make plan STACK={stack}` and snapshot it")
    return json.loads(path.read_text())


def sdk_has_tags(resource_type: str) -> bool | None:
    """Whether the pulumi-azure-native class of a type token takes `tags` (None: unknown)."""
    _, module_name, class_name = resource_type.split(":")
    try:
        module = importlib.import_module(f"pulumi_azure_native.{module_name}")
        cls = getattr(module, class_name)
    except (ImportError, AttributeError):
        return None
    return "tags" in inspect.signature(cls._internal_init).parameters


@pytest.mark.parametrize("stack", STACKS)
def test_snapshot_plan_passes_the_whole_pack(stack: str) -> None:
    plan = load_plan(stack)
    assert plan["stack"] == stack, f"plan-{stack}.json says stack {plan['stack']!r}"
    assert plan["resources"], f"plan-{stack}.json has no resources"
    violations = rules.evaluate_plan(plan)
    assert not violations, "\n".join(str(v) for v in violations)


@pytest.mark.parametrize("stack", STACKS)
def test_taggable_types_match_the_sdk_for_every_type_in_the_plan(stack: str) -> None:
    """TAGGABLE_TYPES (kept without the SDK) agrees with pulumi-azure-native for the plan."""
    types = {r["type"] for r in load_plan(stack)["resources"]}
    wrong = []
    for resource_type in sorted(t for t in types if t.startswith("azure-native:")):
        has_tags = sdk_has_tags(resource_type)
        if has_tags is not None and has_tags != (resource_type in rules.TAGGABLE_TYPES):
            wrong.append(f"{resource_type}: SDK takes tags={has_tags}")
    assert not wrong, "update rules.TAGGABLE_TYPES:\n" + "\n".join(wrong)


# The rules see the plans' resources where they look: breaking one property of each kind
# in the real plan must be caught (guards against a change of the plan's shape that would
# leave a rule looking at nothing).
BREAKAGES = [
    (rules.STORAGE_ACCOUNT, "allowSharedKeyAccess", True, "no-shared-keys-or-local-auth"),
    (rules.STORAGE_ACCOUNT, "minimumTlsVersion", "TLS1_0", "minimum-tls-1-2"),
    (rules.BLOB_CONTAINER, "publicAccess", "Container", "no-public-blob-access"),
    (rules.EVENTHUB_NAMESPACE, "disableLocalAuth", False, "no-shared-keys-or-local-auth"),
    (rules.SQL_SERVER, "administrators", None, "sql-entra-only-auth"),
    (rules.CONTAINER_REGISTRY, "adminUserEnabled", True, "no-admin-users"),
    (rules.KEY_VAULT, "properties", {}, "key-vault-rbac-purge-protection"),
    (rules.ML_WORKSPACE, "systemDatastoresAuthMode", "accesskey", "no-shared-keys-or-local-auth"),
    (rules.ML_COMPUTE, "identity", None, "managed-identities"),
    (rules.STREAMING_JOB, "tags", None, "required-tags"),
]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("resource_type", "key", "value", "rule"), BREAKAGES)
def test_a_broken_property_in_the_real_plan_is_caught(
    stack: str, resource_type: str, key: str, value: object, rule: str
) -> None:
    plan = copy.deepcopy(load_plan(stack))
    targets = [r for r in plan["resources"] if r["type"] == resource_type]
    assert targets, f"plan-{stack}.json has no {resource_type}"
    for resource in targets:
        resource.setdefault("inputs", {})[key] = value
    assert rule in {v.rule for v in rules.evaluate_plan(plan)}


def test_the_dev_cluster_is_held_to_zero_nodes_and_prod_may_keep_some_warm() -> None:
    path = ("properties", "properties", "scaleSettings")
    for stack, expected in (("dev", True), ("prod", False)):
        plan = copy.deepcopy(load_plan(stack))
        clusters = [r for r in plan["resources"] if r["type"] == rules.ML_COMPUTE]
        assert clusters, f"plan-{stack}.json has no AmlCompute cluster"
        for cluster in clusters:
            settings = cluster["inputs"]
            for key in path:
                settings = settings[key]
            settings["minNodeCount"] = 1
        caught = "dev-cluster-scales-to-zero" in {v.rule for v in rules.evaluate_plan(plan)}
        assert caught is expected, stack


# --- the plan check itself, on a small plan of the same format -----------------------------
TAGS = {"project": "batchscore", "environment": "dev"}


def hand_made_plan() -> dict:
    """A few resources shaped like the stack's offline plan (camelCase engine inputs)."""
    return {
        "stack": "dev",
        "resources": [
            {
                "type": "azure-native:resources:ResourceGroup",
                "name": "batchscore-rg",
                "parent": None,
                "inputs": {"location": "westeurope", "tags": TAGS},
            },
            {
                "type": rules.STORAGE_ACCOUNT,
                "name": "storage-account",
                "parent": "storage",
                "inputs": {
                    "kind": "StorageV2",
                    "minimumTlsVersion": "TLS1_2",
                    "enableHttpsTrafficOnly": True,
                    "allowBlobPublicAccess": False,
                    "allowSharedKeyAccess": False,
                    "tags": TAGS,
                },
            },
            {
                "type": rules.BLOB_CONTAINER,
                "name": "storage-models",
                "parent": "storage",
                "inputs": {"containerName": "models", "publicAccess": "None"},
            },
            {
                "type": rules.ML_COMPUTE,
                "name": "ml-cluster",
                "parent": "ml",
                "inputs": {
                    "identity": {"type": "UserAssigned"},
                    "properties": {
                        "computeType": "AmlCompute",
                        "disableLocalAuth": True,
                        "properties": {"scaleSettings": {"minNodeCount": 0, "maxNodeCount": 2}},
                    },
                    "tags": TAGS,
                },
            },
            {
                "type": "batchscore:index:Storage",
                "name": "storage",
                "parent": None,
                "inputs": {},
            },
        ],
    }


def test_a_compliant_plan_passes() -> None:
    assert rules.evaluate_plan(hand_made_plan()) == []


def test_a_violation_in_a_plan_names_resource_rule_and_property() -> None:
    plan = hand_made_plan()
    plan["resources"][1]["inputs"]["allowSharedKeyAccess"] = True
    plan["resources"][3]["inputs"]["properties"]["properties"]["scaleSettings"]["minNodeCount"] = 1
    found = [str(v) for v in rules.evaluate_plan(plan)]
    assert len(found) == 2, found
    assert found[0].startswith(
        "storage-account (azure-native:storage:StorageAccount) breaks "
        "no-shared-keys-or-local-auth: allowSharedKeyAccess is True"
    )
    assert "ml-cluster" in found[1] and "dev-cluster-scales-to-zero" in found[1]


def test_the_same_cluster_may_stay_warm_in_prod() -> None:
    plan = copy.deepcopy(hand_made_plan())
    plan["stack"] = "prod"
    plan["resources"][3]["inputs"]["properties"]["properties"]["scaleSettings"]["minNodeCount"] = 1
    # The hand-made plan is a public one: only the scale-to-zero rule is under test here.
    public_prod = {"private-network-in-prod": {"privateStacks": []}}
    assert rules.evaluate_plan(plan, public_prod) == []


# --- private networking: the prod plan is private, and making any of it public is caught -------
PUBLIC_AGAIN = [  # (type, dotted input path, public value)
    (rules.STORAGE_ACCOUNT, "networkRuleSet.defaultAction", "Allow"),
    (rules.EVENTHUB_NAMESPACE, "publicNetworkAccess", "Enabled"),
    (rules.SQL_SERVER, "publicNetworkAccess", "Enabled"),
    (rules.CONTAINER_REGISTRY, "publicNetworkAccess", "Enabled"),
    (rules.KEY_VAULT, "properties.publicNetworkAccess", "Enabled"),
    (rules.ML_WORKSPACE, "publicNetworkAccess", "Enabled"),
    (rules.ML_WORKSPACE, "managedNetwork.isolationMode", "AllowInternetOutbound"),
    (rules.ML_COMPUTE, "properties.properties.enableNodePublicIp", True),
    (rules.STREAMING_JOB, "cluster", None),
]


def _set(inputs: dict, path: str, value: object) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        inputs = inputs.setdefault(key, {})
    inputs[leaf] = value


@pytest.mark.parametrize(("resource_type", "path", "value"), PUBLIC_AGAIN)
def test_a_public_resource_in_the_prod_plan_is_refused(
    resource_type: str, path: str, value: object
) -> None:
    plan = copy.deepcopy(load_plan("prod"))
    targets = [r for r in plan["resources"] if r["type"] == resource_type]
    assert targets, f"plan-prod.json has no {resource_type}"
    assert not rules.evaluate_plan(plan), "the committed prod plan must be private"
    for resource in targets:
        _set(resource.setdefault("inputs", {}), path, value)
    found = [v for v in rules.evaluate_plan(plan) if v.rule == "private-network-in-prod"]
    assert {v.resource for v in found} == {r["name"] for r in targets}, found


def test_a_sql_firewall_rule_in_prod_is_refused_and_dev_keeps_its_public_services() -> None:
    prod = copy.deepcopy(load_plan("prod"))
    assert not [r for r in prod["resources"] if r["type"] == rules.SQL_FIREWALL_RULE]
    prod["resources"].append(
        {"type": rules.SQL_FIREWALL_RULE, "name": "database-client-0", "inputs": {}}
    )
    found = [v.resource for v in rules.evaluate_plan(prod) if v.rule == "private-network-in-prod"]
    assert found == ["database-client-0"]
    dev = load_plan("dev")  # public and cheap on purpose: the rule leaves it alone
    assert [r for r in dev["resources"] if r["type"] == rules.SQL_FIREWALL_RULE]
    assert not [v for v in rules.evaluate_plan(dev) if v.rule == "private-network-in-prod"]


def test_prod_plan_has_an_endpoint_and_a_zone_for_every_private_service() -> None:
    """Each service whose public access is off has a private endpoint (with its DNS zone
    group) in the stack's VNet, or a managed one on the Stream Analytics cluster."""
    resources = load_plan("prod")["resources"]
    by_type: dict[str, list[dict]] = {}
    for resource in resources:
        by_type.setdefault(resource["type"], []).append(resource)
    groups = {
        c["groupIds"][0]
        for e in by_type["azure-native:network:PrivateEndpoint"]
        for c in e["inputs"]["privateLinkServiceConnections"]
    }
    assert groups == {
        "blob", "file", "queue", "table", "vault", "registry", "sqlServer", "namespace",
        "amlworkspace",
    }  # fmt: skip
    zones = {z["inputs"]["privateZoneName"] for z in by_type["azure-native:privatedns:PrivateZone"]}
    linked = {
        link["inputs"]["privateZoneName"]
        for link in by_type["azure-native:privatedns:VirtualNetworkLink"]
    }
    assert "privatelink.database.windows.net" in zones and len(zones) == 10
    assert len(by_type["azure-native:privatedns:VirtualNetworkLink"]) == len(zones)
    assert len(by_type["azure-native:network:PrivateDnsZoneGroup"]) == len(groups)
    cluster_targets = {
        c["groupIds"][0]
        for e in by_type["azure-native:streamanalytics:PrivateEndpoint"]
        for c in e["inputs"]["manualPrivateLinkServiceConnections"]
    }
    assert cluster_targets == {"namespace", "sqlServer"}
    assert linked, "zones are linked by name (an unknown at plan time is a marker)"


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"resources": []}, "plan has no 'stack' name"),
        ({"stack": "dev"}, "plan of stack 'dev' has no 'resources' list"),
        ({"stack": "dev", "resources": [{"name": "x"}]}, "resource #0 has no 'type'"),
    ],
)
def test_a_malformed_plan_is_named(plan: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules.evaluate_plan(plan)


def test_every_listed_taggable_type_takes_tags_in_the_sdk() -> None:
    wrong = [t for t in sorted(rules.TAGGABLE_TYPES) if sdk_has_tags(t) is not True]
    assert not wrong, f"not taggable (or unknown) in pulumi-azure-native v3: {wrong}"


def test_sdk_lookup_of_taggable_types() -> None:
    assert sdk_has_tags(rules.STORAGE_ACCOUNT) is True
    assert sdk_has_tags(rules.BLOB_CONTAINER) is False
    assert sdk_has_tags("azure-native:nosuchmodule:Thing") is None
