"""The client (application) id of a resource's system-assigned identity, as a stack output.

ARM reports a system-assigned identity on its resource with ``principalId`` and ``tenantId``
only, and pulumi-azure-native 3.x has no function for the rest. The client id is what SQL needs
to create the identity's contained user without Microsoft Graph
(:mod:`components.providers.sql_bootstrap_script`). Managed Identity's own API gives it:
``GET {resource id}/providers/Microsoft.ManagedIdentity/identities/default`` (REST reference
"System Assigned Identities - Get By Scope", api-version 2023-01-31) returns
``properties.clientId``, ``principalId`` and ``tenantId``. Reading it needs only ``*/read`` on
the resource (Reader, Contributor or Owner).

The dynamic provider reads it on create, on update (the resource or its identity changed) and
on refresh (``read``). Only ``clientId`` and ``principalId`` are kept: the response's
``clientSecretUrl`` is an internal credential endpoint and never reaches the state.
Credentials: ``DefaultAzureCredential`` built inside each call, never an input or state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN  # a value known only after the deployment

from components.providers.arm_rest import ArmGetter, ArmReader
from components.providers.azure_errors import AzureCallError
from components.providers.common import call_azure, default_credential, diff_result

API_VERSION = "2023-01-31"
INPUT_KEYS = ("resourceId", "principalId")
REQUIRED_ROLE = "Reader (or any role with */read) on the resource"


def _default_arm() -> ArmGetter:
    return ArmReader(default_credential())


# Module-level hook: tests swap in a recording fake (nothing is kept on the provider instance).
ARM_FACTORY: Callable[[], ArmGetter] = _default_arm


def identity_path(resource_id: str) -> str:
    return f"{resource_id.rstrip('/')}/providers/Microsoft.ManagedIdentity/identities/default"


def look_up(resource_id: str, expected_principal_id: str | None = None) -> dict[str, str]:
    """``{"clientId", "principalId"}`` of the system-assigned identity of ``resource_id``.

    A principal id other than ``expected_principal_id`` (the one the resource reports) means
    the identity was re-created between the two reads: fail rather than hand SQL a stale id.
    """
    body = call_azure(
        ARM_FACTORY().get,
        identity_path(resource_id),
        API_VERSION,
        action="read the system-assigned identity of",
        target=resource_id,
        required_role=REQUIRED_ROLE,
    )
    properties = body.get("properties") or {}
    client_id, principal_id = properties.get("clientId"), properties.get("principalId")
    if not client_id or not principal_id:
        raise AzureCallError(
            f"the system-assigned identity of {resource_id} has no client id yet; "
            "run the deployment again in a minute.",
            status=None,
            kind="failed",
            action="read the system-assigned identity of",
            target=resource_id,
        )
    if expected_principal_id and principal_id != expected_principal_id:
        raise AzureCallError(
            f"the system-assigned identity of {resource_id} is {principal_id}, but the resource "
            f"reports {expected_principal_id}: it was re-created meanwhile; run the deployment "
            "again.",
            status=None,
            kind="conflict",
            action="read the system-assigned identity of",
            target=resource_id,
        )
    return {"clientId": str(client_id), "principalId": str(principal_id)}


class SystemIdentityProvider(dynamic.ResourceProvider):
    """Create, update and read all look the identity up; delete has nothing to remove."""

    serialize_as_secret_always = False  # it captures no secret: credentials live in methods

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        value = news.get("resourceId")
        failures = []
        if value != UNKNOWN and (not isinstance(value, str) or not value.startswith("/")):
            failures.append(
                dynamic.CheckFailure("resourceId", f"resourceId {value!r} is not an ARM id")
            )
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        return diff_result(olds, news, keys=INPUT_KEYS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        found = look_up(props["resourceId"], props.get("principalId"))
        return dynamic.CreateResult(identity_path(props["resourceId"]), _outputs(props, found))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(
            _outputs(news, look_up(news["resourceId"], news.get("principalId")))
        )

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        try:
            found = look_up(props["resourceId"])
        except AzureCallError as exc:
            if exc.kind == "not_found":
                return dynamic.ReadResult("", {})  # the resource (and its identity) is gone
            raise
        inputs = {"resourceId": props["resourceId"], "principalId": found["principalId"]}
        return dynamic.ReadResult(id_, _outputs(props, found), inputs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """A lookup owns nothing in Azure."""


def _outputs(props: Mapping[str, Any], found: Mapping[str, str]) -> dict[str, Any]:
    return {"resourceId": props["resourceId"], **found}


class SystemIdentity(dynamic.Resource, module="batchscore", name="SystemIdentity"):
    """The client id of ``resource_id``'s system-assigned identity (``clientId`` output)."""

    clientId: pulumi.Output[str]  # noqa: N815 (dynamic outputs keep their state key)
    principalId: pulumi.Output[str]  # noqa: N815

    def __init__(
        self,
        name: str,
        resource_id: pulumi.Input[str],
        principal_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            SystemIdentityProvider(),
            name,
            {"resourceId": resource_id, "principalId": principal_id, "clientId": None},
            opts,
        )
