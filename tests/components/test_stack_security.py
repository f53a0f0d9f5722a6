"""The security baseline, resource by resource, in both stacks' plans.

Managed identities and RBAC; no shared keys, local auth or admin users; TLS 1.2; no public
blob access; Entra-only SQL; Key Vault on RBAC with purge protection. Every failure names
the stack, the resource and the property.
"""

from __future__ import annotations

import json
import re

import pytest

from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView

STACKS = ("dev", "prod")

# type -> [(property path, required value)]
BASELINE: dict[str, list[tuple[str, object]]] = {
    "azure-native:storage:StorageAccount": [
        ("kind", "StorageV2"),
        ("minimumTlsVersion", "TLS1_2"),
        ("enableHttpsTrafficOnly", True),
        ("allowBlobPublicAccess", False),
        ("allowSharedKeyAccess", False),
        ("defaultToOAuthAuthentication", True),
        ("allowCrossTenantReplication", False),
    ],
    "azure-native:storage:BlobContainer": [("publicAccess", "None")],
    "azure-native:eventhub:Namespace": [
        ("sku.name", "Standard"),
        ("disableLocalAuth", True),
        ("minimumTlsVersion", "1.2"),
    ],
    "azure-native:sql:Server": [
        ("minimalTlsVersion", "1.2"),
        ("administrators.administratorType", "ActiveDirectory"),
        ("administrators.azureADOnlyAuthentication", True),
    ],
    "azure-native:containerregistry:Registry": [
        ("adminUserEnabled", False),
        ("anonymousPullEnabled", False),
    ],
    "azure-native:keyvault:Vault": [
        ("properties.enableRbacAuthorization", True),
        ("properties.enablePurgeProtection", True),
        ("properties.enableSoftDelete", True),
        ("properties.accessPolicies", []),
    ],
    "azure-native:machinelearningservices:Workspace": [
        ("identity.type", "SystemAssigned"),
        ("systemDatastoresAuthMode", "identity"),
    ],
    "azure-native:machinelearningservices:Compute": [
        ("identity.type", "UserAssigned"),
        ("properties.disableLocalAuth", True),
        ("properties.properties.remoteLoginPortPublicAccess", "Disabled"),
        ("properties.properties.scaleSettings.minNodeCount", 0),
    ],
    "azure-native:machinelearningservices:Datastore": [
        ("properties.credentials.credentialsType", "None"),
    ],
    "azure-native:streamanalytics:StreamingJob": [("identity.type", "SystemAssigned")],
    "azure-native:streamanalytics:Input": [("properties.datasource.authenticationMode", "Msi")],
    "azure-native:streamanalytics:Output": [("datasource.authenticationMode", "Msi")],
    "azure-native:applicationinsights:Component": [("disableLocalAuth", True)],
}

# Properties that would carry a credential: none may appear anywhere in a plan.
CREDENTIAL_KEYS = {
    "administratorLogin",
    "administratorLoginPassword",
    "sharedAccessPolicyKey",
    "accountKey",
    "password",
    "user",
    "connectionString",
    "sasToken",
    "clientSecret",
}
# The docker-build registry login is the one allowed password: an Entra-based refresh token.
ALLOWED_CREDENTIALS = {("docker-build:index:Image", "registries.0.password")}


@pytest.fixture(scope="module", params=STACKS)
def plan(request) -> PlanView:
    return PlanView(plan_in_subprocess(request.param))


def _walk(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}.{index}")
    else:
        yield path, value


@pytest.mark.parametrize("resource_type", sorted(BASELINE))
def test_security_baseline(plan: PlanView, resource_type: str) -> None:
    resources = plan.of_type(resource_type)
    assert resources, f"stack {plan.stack} has no {resource_type}"
    failures = [
        f"stack {plan.stack}: {resource} has {path}={resource.get(path, '<not set>')!r}, "
        f"must be {wanted!r}"
        for resource in resources
        for path, wanted in BASELINE[resource_type]
        if resource.get(path, "<not set>") != wanted
    ]
    assert not failures, "\n".join(failures)


def test_no_credential_in_any_input(plan: PlanView) -> None:
    found = [
        f"stack {plan.stack}: {resource} sets {path}"
        for resource in plan
        for path, _ in _walk(dict(resource.inputs))
        if path.rsplit(".", 1)[-1] in CREDENTIAL_KEYS
        and (resource.type, path) not in ALLOWED_CREDENTIALS
    ]
    assert not found, "\n".join(found)


def test_the_registry_password_is_a_secret_refresh_token(plan: PlanView) -> None:
    image = plan.one("docker-build:index:Image")
    login = image.get("registries.0")
    assert login["password"] == "[secret]", f"{image}: the registry password must be secret"
    assert login["username"] == "00000000-0000-0000-0000-000000000000", (
        f"{image}: must log in with an ACR refresh token, not the admin user"
    )


def test_role_assignments_go_to_managed_identities_on_narrow_scopes(plan: PlanView) -> None:
    deployer = "33333333-3333-4333-8333-333333333333"  # the mocks' deploying identity
    for role in plan.of_type("azure-native:authorization:RoleAssignment"):
        scope = role.get("scope")
        assert "/providers/" in scope, f"{role}: scope {scope} is wider than one resource"
        if role.get("principalId") == deployer:
            # A person or CI's service principal, as the stack config says (test_stack_program).
            assert role.get("principalType") in ("User", "ServicePrincipal", None), f"{role}"
            continue
        assert role.get("principalType") == "ServicePrincipal", f"{role}: principal type"


def test_outputs_hold_nothing_secret(plan: PlanView) -> None:
    text = json.dumps(plan.outputs).lower()
    for marker in ("[secret]", "password", "token", "key=", "sig=", "accountkey"):
        assert marker not in text, f"stack {plan.stack}: an output contains {marker!r}"
    for name, value in plan.outputs.items():
        assert not re.search(r"[?&](sv|sig|se)=", str(value)), f"{name} looks like a SAS URL"
