"""The one credential of the providers and commands: in a GitHub Actions job allowed to request
OIDC tokens it re-reads the GitHub ID token whenever Entra ID needs one (the Azure CLI's OIDC
login expires after 10 minutes, Azure/azure-cli#28708); elsewhere DefaultAzureCredential.

The GitHub token endpoint is a real local HTTP server that enforces GitHub's documented
request: the audience ``api://AzureADTokenExchange`` and ``Authorization: bearer <request
token>``, answered with ``{"value": <jwt>}``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, DefaultAzureCredential

from components.providers import common, github_oidc

ROOT = Path(__file__).resolve().parents[2]
REQUEST_TOKEN = "request-token-7f3a"  # what GitHub puts in ACTIONS_ID_TOKEN_REQUEST_TOKEN
GITHUB_ENV = (
    github_oidc.REQUEST_URL,
    github_oidc.REQUEST_TOKEN,
    github_oidc.CLIENT_ID,
    github_oidc.TENANT_ID,
)


class TokenEndpoint(BaseHTTPRequestHandler):
    """GitHub's ID token endpoint: one new token per valid request."""

    issued: list[str] = []
    refuse = False

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        query = parse_qs(urlsplit(self.path).query)
        valid = (
            self.headers.get("Authorization") == f"bearer {REQUEST_TOKEN}"
            and query.get("audience") == ["api://AzureADTokenExchange"]
            and query.get("api-version") == ["2.0"]
        )
        if self.refuse or not valid:
            self.send_response(403)
            self.end_headers()
            return
        token = f"github-jwt-{len(self.issued) + 1}"
        self.issued.append(token)
        body = json.dumps({"count": 1, "value": token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    TokenEndpoint.issued, TokenEndpoint.refuse = [], False
    server = HTTPServer(("127.0.0.1", 0), TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # GitHub's URL already carries a query string; the audience is appended with '&'
        yield f"http://127.0.0.1:{server.server_port}/idtoken?api-version=2.0"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def in_github(monkeypatch, endpoint) -> str:
    monkeypatch.setenv(github_oidc.REQUEST_URL, endpoint)
    monkeypatch.setenv(github_oidc.REQUEST_TOKEN, REQUEST_TOKEN)
    monkeypatch.setenv(github_oidc.CLIENT_ID, "00000000-0000-0000-0000-0000000000c1")
    monkeypatch.setenv(github_oidc.TENANT_ID, "00000000-0000-0000-0000-0000000000a1")
    return endpoint


def test_in_a_github_job_the_credential_re_reads_the_oidc_token(in_github) -> None:
    credential = common.default_credential()
    assert isinstance(credential, ClientAssertionCredential)
    # azure-identity calls the assertion function each time it asks Entra ID for a token:
    # every call is a fresh GitHub token, so an hour-long deployment never outlives its login
    assert credential._func() == "github-jwt-1"
    assert credential._func() == "github-jwt-2"
    assert TokenEndpoint.issued == ["github-jwt-1", "github-jwt-2"]


@pytest.mark.parametrize("absent", GITHUB_ENV)
def test_elsewhere_or_without_every_variable_it_is_the_default_credential(
    monkeypatch, in_github, absent: str
) -> None:
    monkeypatch.delenv(absent)
    assert isinstance(common.default_credential(), DefaultAzureCredential)


def test_a_refused_token_request_says_what_the_job_needs_and_leaks_nothing(in_github) -> None:
    TokenEndpoint.refuse = True
    with pytest.raises(ClientAuthenticationError) as caught:
        github_oidc.github_id_token()
    text = str(caught.value)
    assert "id-token: write" in text and "403" in text
    assert REQUEST_TOKEN not in text


def test_every_job_that_signs_in_names_the_identity_for_the_credential() -> None:
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        for name, job in workflow["jobs"].items():
            logins = [s for s in job.get("steps", []) if "azure/login" in str(s.get("uses"))]
            if not logins:
                continue
            env = job.get("env", {})
            assert job["permissions"]["id-token"] == "write", f"{path.name}:{name}"
            assert env.get("AZURE_CLIENT_ID") == "${{ vars.AZURE_CLIENT_ID }}", (
                f"{path.name}:{name}"
            )
            assert env.get("AZURE_TENANT_ID") == "${{ vars.AZURE_TENANT_ID }}", (
                f"{path.name}:{name}"
            )
