"""Wait, bounded, until the deploying identity's new blob data role on the stack's storage
account is in effect, before the resources that need it.

Two steps of `pulumi up` act on the storage account's data *as the deployer*:

* switching on Event Hubs Capture: Event Hubs runs a "linked access check" on the capture
  destination for the identity making the request, which must have
  ``Microsoft.Storage/storageAccounts/blobServices/containers/write`` and ``.../blobs/write``
  on the account, or the hub is refused (Azure/azure-sdk-for-js#30204, the service's own
  message: "User or the application ... making the request doesn't have the required data
  plane write permissions");
* registering the scoring components: azure-ai-ml uploads their code to the workspace's
  identity-based default datastore with the caller's credential
  (``azure/ai/ml/_artifacts/_artifact_utilities.py``, ``get_datastore_info``).

The stack grants the deployer Storage Blob Data Contributor on the account, and a new
assignment takes minutes to apply. This dynamic resource sits between the two: on create and
update it reads the container's blob list as the deployer (the smallest data-plane read the
role allows) until that stops answering 403, for at most
:data:`~components.providers.common.ROLE_PROPAGATION`, then fails naming the role and scope.
Delete has nothing to undo. Credentials: ``DefaultAzureCredential`` inside each call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN  # a value known only after the deployment

from components.providers import common
from components.providers.common import default_credential, diff_result

INPUT_KEYS = ("accountName", "containerName", "role", "scope", "assignmentId")
REQUIRED = ("accountName", "containerName", "role", "scope")


def _list_one_blob(account_name: str, container_name: str) -> None:
    """One data-plane read as the deployer: the first page (one name) of the blob list."""
    from azure.storage.blob import ContainerClient

    credential = default_credential()
    client = ContainerClient(
        f"https://{account_name}.blob.core.windows.net", container_name, credential=credential
    )
    try:
        next(iter(client.list_blob_names(results_per_page=1).by_page()), None)
    finally:
        client.close()
        credential.close()


# Module-level hook: tests swap in a recording fake that enforces propagation.
PROBE: Callable[[str, str], None] = _list_one_blob


def wait_until_effective(props: Mapping[str, Any]) -> None:
    """Return once the deployer can read the container; AzureCallError after the bounded wait."""
    account, container = props["accountName"], props["containerName"]
    common.retry_while_forbidden(
        lambda: PROBE(account, container),
        role=props["role"],
        scope=props["scope"],
        action="list blobs as the deploying identity",
        target=f"container {container} of storage account {account}",
        wait=common.ROLE_PROPAGATION,
    )


class DataAccessWaitProvider(dynamic.ResourceProvider):
    """Create and update wait for the role; nothing else."""

    serialize_as_secret_always = False  # it captures no secret: credentials live in methods

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = [
            dynamic.CheckFailure(key, f"{key} must be a non-empty string")
            for key in REQUIRED
            if news.get(key) != UNKNOWN and (not isinstance(news.get(key), str) or not news[key])
        ]
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        return diff_result(olds, news, keys=INPUT_KEYS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        wait_until_effective(props)
        return dynamic.CreateResult(
            f"{props['scope']}/data-access/{props['containerName']}", _outputs(props)
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        wait_until_effective(news)
        return dynamic.UpdateResult(_outputs(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Waiting leaves nothing behind."""


def _outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: props.get(k) for k in INPUT_KEYS}


class DataAccessWait(dynamic.Resource, module="batchscore", name="DataAccessWait"):
    """Exists once the deployer's blob data role on ``scope`` answers; depend on it."""

    def __init__(
        self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(DataAccessWaitProvider(), name, dict(props), opts)
