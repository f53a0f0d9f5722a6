"""A small text blob the stack writes with Entra ID: the outputs document for other teams.

Why not ``azure_native.storage.Blob``: that resource signs its data-plane calls with the
account's key (``ListKeys`` then a shared-key client, pulumi-azure-native
``provider/pkg/resources/customresources/custom_storage_azidentity.go``), and this stack's
account has shared-key access off, so it fails with ``KeyBasedAuthenticationNotPermitted``
(pulumi-azure-native#2015, #2948, both open). This resource uploads as the identity running
``pulumi up`` (``DefaultAzureCredential`` built inside each call), which the stack grants
Storage Blob Data Contributor on the account; depend on that grant being in effect.

Create and update overwrite the blob; delete removes it (a blob already gone is fine). There is
no ``read``: the scheduled drift check refreshes as a Reader without data access, and the
content is entirely determined by the inputs, which the state keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN  # a value known only after the deployment

from components.providers.common import call_azure, default_credential, diff_result

INPUT_KEYS = ("accountName", "containerName", "blobName", "content", "contentType")
REPLACE_KEYS = ("accountName", "containerName", "blobName")
WRITER_ROLE = "Storage Blob Data Contributor"


def blob_url(account_name: str, container_name: str, blob_name: str) -> str:
    return f"https://{account_name}.blob.core.windows.net/{container_name}/{blob_name}"


def _entra_container(account_name: str, container_name: str):
    """A ContainerClient signed in as the deployer (no key, no SAS), and what to close."""
    from azure.storage.blob import ContainerClient

    credential = default_credential()
    client = ContainerClient(
        f"https://{account_name}.blob.core.windows.net", container_name, credential=credential
    )
    return client, [client, credential]


# Module-level hook: tests point it at Azurite (a real Blob endpoint).
CONTAINER_CLIENT: Callable[[str, str], tuple[Any, list[Any]]] = _entra_container


def upload(props: Mapping[str, Any]) -> None:
    """Write ``content`` to the blob, replacing what is there."""
    from azure.storage.blob import ContentSettings

    client, closables = CONTAINER_CLIENT(props["accountName"], props["containerName"])
    try:
        call_azure(
            client.upload_blob,
            props["blobName"],
            props["content"].encode("utf-8"),
            overwrite=True,
            content_settings=ContentSettings(content_type=props["contentType"]),
            action="write the blob",
            target=f"{props['containerName']}/{props['blobName']} of {props['accountName']}",
            required_role=WRITER_ROLE,
        )
    finally:
        for item in closables:
            item.close()


def remove(props: Mapping[str, Any]) -> None:
    """Delete the blob; one that is already gone counts as deleted."""
    from azure.core.exceptions import ResourceNotFoundError

    client, closables = CONTAINER_CLIENT(props["accountName"], props["containerName"])
    try:
        try:
            client.delete_blob(props["blobName"])
        except ResourceNotFoundError:
            pass
    finally:
        for item in closables:
            item.close()


class PublishedBlobProvider(dynamic.ResourceProvider):
    """Writes one text blob with the deployer's Entra identity."""

    serialize_as_secret_always = False  # it captures no secret: credentials live in methods

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = [
            dynamic.CheckFailure(key, f"{key} must be a non-empty string")
            for key in INPUT_KEYS
            if news.get(key) != UNKNOWN and (not isinstance(news.get(key), str) or not news[key])
        ]
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        return diff_result(olds, news, keys=INPUT_KEYS, replace_keys=REPLACE_KEYS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        upload(props)
        return dynamic.CreateResult(_url(props), _outputs(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        upload(news)
        return dynamic.UpdateResult(_outputs(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        remove(props)


def _url(props: Mapping[str, Any]) -> str:
    return blob_url(props["accountName"], props["containerName"], props["blobName"])


def _outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {**{k: props.get(k) for k in INPUT_KEYS}, "url": _url(props)}


class PublishedBlob(dynamic.Resource, module="batchscore", name="PublishedBlob"):
    """One text blob, written with Entra ID; ``url`` is where readers find it."""

    url: pulumi.Output[str]

    def __init__(
        self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(PublishedBlobProvider(), name, {**dict(props), "url": None}, opts)
