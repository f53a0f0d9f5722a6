"""Read-only calls to Azure Resource Manager over azure-core, for what no installed SDK covers.

The system-assigned identity lookup and the preflight read a handful of ARM endpoints
(``GET {scope}/providers/Microsoft.ManagedIdentity/identities/default``, resource providers,
role assignments, Azure ML usages and VM sizes). Pulling a management SDK per endpoint would
add four packages for five GETs, so :class:`ArmReader` sends them with azure-core's own
pipeline: a bearer token from the given credential for ``https://management.azure.com``,
azure-core's retry policy (429 and 5xx, honouring ``Retry-After``), and
``HttpResponseError`` (with ``status_code``) for any other failure, which
:func:`components.providers.azure_errors.explain` turns into a message.

Unlike the SDKs' ``ARMPipelineClient``, this pipeline never registers a resource provider on
the caller's behalf (``ARMAutoResourceProviderRegistrationPolicy``): reading must not change
the subscription. Nothing here logs a token or a response body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

ARM_ENDPOINT = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
_MAX_PAGES = 100


class ArmGetter(Protocol):
    """What callers need: one GET returning the JSON body (tests pass a recording fake)."""

    def get(
        self, path: str, api_version: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]: ...


class ArmReader:
    """GETs on Azure Resource Manager as the identity behind ``credential``."""

    def __init__(
        self, credential: Any, endpoint: str = ARM_ENDPOINT, transport: Any = None
    ) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline import policies

        self._endpoint = endpoint.rstrip("/")
        self._client = PipelineClient(
            base_url=self._endpoint,
            policies=[
                policies.HeadersPolicy(),
                policies.UserAgentPolicy(base_user_agent="batchscore"),
                policies.RetryPolicy(),
                policies.BearerTokenCredentialPolicy(credential, ARM_SCOPE),
            ],
            transport=transport,  # None: azure-core's default (requests)
        )

    def get(
        self, path: str, api_version: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The JSON body of ``GET {endpoint}{path}?api-version=...``; HttpResponseError if not 2xx.

        ``path`` is an ARM id or collection path (``/subscriptions/...``) or a ``nextLink``.
        """
        from azure.core.rest import HttpRequest

        url = path if path.startswith("https://") else f"{self._endpoint}/{path.lstrip('/')}"
        query = dict(params or {})
        if "api-version=" not in url:
            query["api-version"] = api_version
        response = self._client.send_request(HttpRequest("GET", url, params=query))
        response.raise_for_status()
        return response.json()


def get_all(
    arm: ArmGetter, path: str, api_version: str, params: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every item of an ARM list (``value``), following ``nextLink`` (bounded)."""
    items: list[dict[str, Any]] = []
    page = arm.get(path, api_version, params)
    for _ in range(_MAX_PAGES):
        items += page.get("value") or []
        link = page.get("nextLink")
        if not link:
            return items
        page = arm.get(link, api_version)
    raise RuntimeError(f"GET {path}: more than {_MAX_PAGES} pages; refusing to read further")
