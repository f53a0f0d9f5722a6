"""Two stacks coexist: no fixed cloud name that could collide, unique names from project+stack.

Every Azure type in the plans is classified, so a new resource type forces a decision:

* GLOBAL: Azure needs the name unique across Azure (or, for the resource group, the
  subscription): set explicitly from project, stack and the stack's random suffix;
* AUTO_NAMED: unique within the resource group: left to the provider's auto-naming;
* SCOPED: a child named inside a parent that is itself unique per stack (a container in its
  account, a hub in its namespace): a fixed, readable name is fine.
"""

from __future__ import annotations

import pytest

from components.naming import RULES, SUFFIX_LENGTH
from components.offline.mocks import ARM_TYPES
from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView

GLOBAL = {
    "azure-native:resources:ResourceGroup": "resource_group",
    "azure-native:storage:StorageAccount": "storage_account",
    "azure-native:containerregistry:Registry": "container_registry",
    "azure-native:keyvault:Vault": "key_vault",
    "azure-native:sql:Server": "sql_server",
    "azure-native:eventhub:Namespace": "event_hubs_namespace",
    "azure-native:machinelearningservices:Workspace": "ml_workspace",
}
AUTO_NAMED = {
    "azure-native:operationalinsights:Workspace",
    "azure-native:applicationinsights:Component",
    "azure-native:managedidentity:UserAssignedIdentity",
    "azure-native:streamanalytics:StreamingJob",
    "azure-native:authorization:RoleAssignment",  # a GUID the provider generates
    "azure-native:monitor:ActionGroup",
    "azure-native:monitor:ScheduledQueryRule",
    "azure-native:monitor:MetricAlert",
    "azure-native:monitor:ActivityLogAlert",
    # private networking (prod)
    "azure-native:network:VirtualNetwork",
    "azure-native:network:PrivateEndpoint",
    "azure-native:privatedns:VirtualNetworkLink",
    "azure-native:streamanalytics:Cluster",
}
SCOPED = {
    "azure-native:storage:BlobServiceProperties",
    "azure-native:storage:BlobContainer",
    "azure-native:eventhub:EventHub",
    "azure-native:eventhub:ConsumerGroup",
    "azure-native:sql:FirewallRule",
    "azure-native:sql:Database",
    "azure-native:streamanalytics:Input",
    "azure-native:streamanalytics:Output",
    "azure-native:machinelearningservices:Compute",
    "azure-native:machinelearningservices:Datastore",
    "azure-native:monitor:DiagnosticSetting",
    # Named by a GUID of project and stack (Azure wants a GUID), in the stack's resource group.
    "azure-native:applicationinsights:Workbook",
    # Private networking (prod): named inside their VNet, endpoint, workspace or cluster; the
    # private DNS zones carry Azure's fixed zone names, in the stack's resource group.
    "azure-native:network:Subnet",
    "azure-native:network:PrivateDnsZoneGroup",
    "azure-native:privatedns:PrivateZone",
    "azure-native:machinelearningservices:ManagedNetworkSettingsRule",
    "azure-native:streamanalytics:PrivateEndpoint",
}


@pytest.fixture(scope="module")
def plans() -> dict[str, PlanView]:
    return {stack: PlanView(plan_in_subprocess(stack)) for stack in ("dev", "prod")}


def cloud_name(resource) -> str | None:
    key, _ = ARM_TYPES[resource.type]
    return resource.get(key)


def test_every_azure_type_is_classified(plans: dict[str, PlanView]) -> None:
    types = {r.type for plan in plans.values() for r in plan if r.type.startswith("azure-native")}
    unclassified = types - set(GLOBAL) - AUTO_NAMED - SCOPED
    assert not unclassified, f"decide how these are named: {sorted(unclassified)}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_globally_unique_names_derive_from_project_stack_and_one_suffix(
    plans: dict[str, PlanView], stack: str
) -> None:
    suffixes = set()
    for resource in plans[stack]:
        if resource.type not in GLOBAL:
            continue
        name = cloud_name(resource)
        assert name, f"{stack}: {resource} needs an explicit globally unique name"
        rule = RULES[GLOBAL[resource.type]]
        assert rule.problems(name) == [], f"{stack}: {resource}: {rule.problems(name)}"
        # The project may be shortened to fit (kv-batchscor-prod-...), the stack is kept.
        assert stack in name and "batchsc" in name, f"{stack}: {resource} name {name}"
        suffixes.add(name[-SUFFIX_LENGTH:])
    assert len(suffixes) == 1, f"{stack}: all global names share the stack's suffix: {suffixes}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_resource_group_scoped_names_are_auto_named(plans: dict[str, PlanView], stack: str) -> None:
    for resource in plans[stack]:
        if resource.type in AUTO_NAMED:
            assert not cloud_name(resource), f"{stack}: {resource} must be auto-named"


def test_dev_and_prod_share_no_name_that_must_be_unique(plans: dict[str, PlanView]) -> None:
    def names(plan: PlanView) -> set[str]:
        return {cloud_name(r) for r in plan if r.type in GLOBAL}

    shared = names(plans["dev"]) & names(plans["prod"])
    assert not shared, f"dev and prod would collide on {sorted(shared)}"
    dev_ids = {r.id for r in plans["dev"] if r.id}
    prod_ids = {r.id for r in plans["prod"] if r.id}
    assert not dev_ids & prod_ids, "the two stacks would manage the same Azure resource"
