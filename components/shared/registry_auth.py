"""Registry credentials for pushing the image, from an Entra token (no admin user, no keys).

Why this way: `containerregistry.list_registry_credentials` returns the *admin user's*
passwords, which this stack switches off. What `az acr login` does instead is used here:

1. get an Entra access token for the registry audience for whoever runs `pulumi up`
   (`authorization.get_client_token(endpoint=ACR_AUDIENCE)`, the provider's own login);
2. exchange it at `https://<login server>/oauth2/exchange` for an ACR refresh token;
3. log in with the fixed user name `00000000-0000-0000-0000-000000000000` and that refresh
   token as password (docker-build keeps it in memory, never in the docker config).

The deployer needs push rights on the registry: Owner or Contributor on the resource group
include them (registries without ABAC repository permissions), as does AcrPush. The stack
does not grant AcrPush to "whoever deploys": that assignment would move with every person
or pipeline running `pulumi up`. Both tokens are short-lived and kept secret, so the state
never holds a usable credential.
The exchange is a read-only HTTPS call made when the login server is known; the offline
plan swaps it for a stand-in with `use_exchanger`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from typing import cast

import pulumi

ACR_AUDIENCE = "https://containerregistry.azure.net"
REFRESH_TOKEN_USERNAME = "00000000-0000-0000-0000-000000000000"

# (url, form fields) -> (HTTP status, response body)
Poster = Callable[[str, dict[str, str]], tuple[int, bytes]]
Exchanger = Callable[[str, str, str], str]


class AcrTokenExchangeError(RuntimeError):
    """The registry refused or failed the token exchange; names the registry, never a token."""


def _https_post(url: str, form: dict[str, str]) -> tuple[int, bytes]:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (https only)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def exchange_for_refresh_token(
    login_server: str, tenant_id: str, access_token: str, *, post: Poster = _https_post
) -> str:
    """An ACR refresh token for `access_token` (an Entra token of the registry audience)."""
    if not login_server or "/" in login_server:
        raise AcrTokenExchangeError(f"registry login server {login_server!r} is not a host name")
    url = f"https://{login_server}/oauth2/exchange"
    form = {
        "grant_type": "access_token",
        "service": login_server,
        "tenant": tenant_id,
        "access_token": access_token,
    }
    try:
        status, body = post(url, form)
    except OSError as exc:
        raise AcrTokenExchangeError(f"token exchange with {login_server} failed: {exc}") from exc
    if status != 200:
        raise AcrTokenExchangeError(
            f"registry {login_server} refused the token exchange (HTTP {status}); can the "
            "identity running `pulumi up` push to it (AcrPush, Contributor or Owner)?"
        )
    try:
        token = json.loads(body)["refresh_token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AcrTokenExchangeError(
            f"registry {login_server} answered the token exchange without a refresh_token"
        ) from exc
    return str(token)


_exchanger: Exchanger = exchange_for_refresh_token


@contextmanager
def use_exchanger(exchanger: Exchanger):
    """Swap the exchange (the offline plan and tests use a stand-in); restored afterwards."""
    global _exchanger
    previous, _exchanger = _exchanger, exchanger
    try:
        yield
    finally:
        _exchanger = previous


def registry_password(
    login_server: pulumi.Input[str], tenant_id: pulumi.Input[str], access_token: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The refresh token to log in to `login_server` with, as a secret Output.

    The exchange in force when this is called is the one used, even though it runs later.

    Unknown during a preview: `pulumi up --plan` applies only the values the preview recorded,
    and a token minted at preview time is never the one minted during the update, so a known
    password makes every planned update fail with the image "violating the plan"
    (pulumi/pulumi#17546, docker-build registries). Unknown, the plan records "any value".
    """
    if pulumi.runtime.is_dry_run():
        return pulumi.Output.secret(cast(str, pulumi.output.UNKNOWN))
    exchange = _exchanger
    password = pulumi.Output.all(login_server, tenant_id, access_token).apply(
        lambda values: exchange(values[0], values[1], values[2])
    )
    return pulumi.Output.secret(password)
