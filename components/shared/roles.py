"""Azure RBAC: built-in role ids and one helper that grants a role to a managed identity.

The id table is also what the preflight (:mod:`batchscore.preflight`) compares the deployer's
role assignments with, so the Pulumi SDK is imported only where a role is assigned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pulumi

from components.shared.placement import child_options

if TYPE_CHECKING:
    from pulumi_azure_native import authorization

# Built-in role definition ids (the same in every tenant).
ROLE_IDS: dict[str, str] = {
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage File Data Privileged Contributor": "69566ab7-960f-475b-8e7c-b3118f30c6bd",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Azure Event Hubs Data Receiver": "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
    "Azure Event Hubs Data Sender": "2b629674-e913-4c01-ae53-ef4638d8f975",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    # What the deployer needs to create the stack and its role assignments.
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    # Publishes all telemetry to Application Insights with an Entra token, not only metrics
    # (learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}


# The roles this stack assigns (to the cluster's and the stream job's identities, Application
# Insights' publisher and the deployer): a conditional role writer must allow every one
# (batchscore.preflight). A test holds this list to the role assignments of both plans.
STACK_ROLES: tuple[str, ...] = (
    "Storage Blob Data Contributor",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
    "AcrPull",
    "Azure Event Hubs Data Receiver",
    "Monitoring Metrics Publisher",
)


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """The subscription-scoped resource id of a built-in role, by its display name."""
    if role not in ROLE_IDS:
        raise KeyError(f"unknown built-in role {role!r}; known: {', '.join(sorted(ROLE_IDS))}")
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/",
        ROLE_IDS[role],
    )


def assign_role(
    name: str,
    *,
    role: str,
    principal_id: pulumi.Input[str],
    scope: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    parent: pulumi.Resource,
    principal_type: str | None = "ServicePrincipal",
    depends_on: Sequence[pulumi.Resource] | None = None,
) -> authorization.RoleAssignment:
    """Grant `role` on `scope` to a principal; the assignment's GUID name is auto-named.

    `principal_type="ServicePrincipal"` (managed identities) lets ARM skip the directory
    lookup that fails right after an identity is created; pass None when the principal
    may be a user or a service principal (the deployer).
    """
    from pulumi_azure_native import authorization

    return authorization.RoleAssignment(
        name,
        principal_id=principal_id,
        principal_type=principal_type,
        role_definition_id=role_definition_id(subscription_id, role),
        scope=scope,
        description=f"batchscore: {role}",
        opts=child_options(parent, depends_on=depends_on),
    )
