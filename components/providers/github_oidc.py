"""A credential for GitHub Actions that stays valid for the whole deployment.

``azure/login`` with OIDC signs the Azure CLI in once, and that login is not refreshed: an
hour-long ``pulumi up`` whose dynamic providers ask the CLI for SQL, Storage or Azure ML tokens
after ten minutes fails with AADSTS700024 (Azure/azure-cli#28708). Instead, when the job may
request OIDC tokens (``permissions: id-token: write`` sets ``ACTIONS_ID_TOKEN_REQUEST_URL`` and
``ACTIONS_ID_TOKEN_REQUEST_TOKEN``) and names the identity (``AZURE_CLIENT_ID``,
``AZURE_TENANT_ID``), the providers and commands sign in with azure-identity's
``ClientAssertionCredential``, whose assertion is a GitHub ID token fetched afresh each time
Entra ID needs one: the documented request is ``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=
api://AzureADTokenExchange`` with ``Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN``,
answered with ``{"value": "<jwt>"}`` (GitHub Docs, "Configuring OpenID Connect in Azure" and
"About security hardening with OpenID Connect"). The federated credential of the identity is
the one ``azure/login`` already uses, so nothing changes in Entra ID.

Nothing here is kept: the request token stays in the environment, the ID token is fetched
when needed and handed to azure-identity, never logged, stored or put in an error message.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
CLIENT_ID = "AZURE_CLIENT_ID"
TENANT_ID = "AZURE_TENANT_ID"
#: the audience Entra ID expects in a federated GitHub token
AUDIENCE = "api://AzureADTokenExchange"
REQUEST_TIMEOUT_SECONDS = 30.0


def github_oidc_available(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a GitHub Actions job allowed to request OIDC tokens that names the Azure
    identity to sign in as."""
    env = os.environ if environ is None else environ
    return all(env.get(name) for name in (REQUEST_URL, REQUEST_TOKEN, CLIENT_ID, TENANT_ID))


def github_id_token(environ: Mapping[str, str] | None = None) -> str:
    """A fresh GitHub Actions ID token for Entra ID's audience (a bounded request)."""
    from azure.core.exceptions import ClientAuthenticationError

    env = os.environ if environ is None else environ
    url = env[REQUEST_URL]
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    request = urllib.request.Request(
        f"{url}{separator}audience={urllib.parse.quote(AUDIENCE, safe='')}",
        headers={"Authorization": f"bearer {env[REQUEST_TOKEN]}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            token = json.loads(response.read().decode("utf-8")).get("value")
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
        raise ClientAuthenticationError(
            f"could not get a GitHub Actions OIDC token from {REQUEST_URL} "
            f"({type(exc).__name__}: {getattr(exc, 'code', '') or exc}); the job needs "
            "`permissions: id-token: write`"
        ) from None
    if not token:
        raise ClientAuthenticationError(
            f"the GitHub Actions OIDC endpoint ({REQUEST_URL}) answered without a token"
        )
    return token


def github_oidc_credential(environ: Mapping[str, str] | None = None) -> Any:
    """``ClientAssertionCredential`` for ``AZURE_CLIENT_ID`` in ``AZURE_TENANT_ID`` whose
    assertion is a fresh GitHub ID token each time azure-identity needs a new access token."""
    from azure.identity import ClientAssertionCredential

    env = dict(os.environ if environ is None else environ)
    return ClientAssertionCredential(
        tenant_id=env[TENANT_ID],
        client_id=env[CLIENT_ID],
        func=lambda: github_id_token(env),
    )
