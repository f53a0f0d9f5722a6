"""The ARM reader over azure-core, and the lookup of a system-assigned identity's client id."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import RequestsTransport

from components.providers import arm_rest, system_identity
from components.providers.azure_errors import AzureCallError
from tests.components.fake_arm import FakeSession, RecordingArm, http_error

SUB = "11111111-1111-4111-8111-111111111111"
JOB_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-dev/providers/"
    "Microsoft.StreamAnalytics/streamingjobs/asa-dev"
)
IDENTITY_PATH = JOB_ID + "/providers/Microsoft.ManagedIdentity/identities/default"
CLIENT_ID = "5a5a5a5a-1111-4222-8333-444455556666"
PRINCIPAL_ID = "6b6b6b6b-1111-4222-8333-444455556666"
IDENTITY = {
    "id": IDENTITY_PATH,
    "name": "default",
    "type": "Microsoft.ManagedIdentity/identities",
    "properties": {
        "tenantId": "22222222-2222-4222-8222-222222222222",
        "principalId": PRINCIPAL_ID,
        "clientId": CLIENT_ID,
        "clientSecretUrl": "https://control-westeurope.identity.azure.net/subscriptions/x",
    },
}


class FakeCredential:
    def __init__(self):
        self.scopes = []

    def get_token(self, *scopes, **_):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("fake-arm-token", 4102444800)


# --- ArmReader over azure-core's real pipeline ---------------------------------------------


def test_reader_sends_an_authorized_get_with_the_api_version():
    session = FakeSession((200, IDENTITY))
    credential = FakeCredential()
    reader = arm_rest.ArmReader(
        credential, transport=RequestsTransport(session=session, session_owner=False)
    )
    assert reader.get(IDENTITY_PATH, "2023-01-31") == IDENTITY
    (sent,) = session.requests
    url = urlparse(sent["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "management.azure.com", IDENTITY_PATH)
    assert parse_qs(url.query) == {"api-version": ["2023-01-31"]}
    assert sent["headers"]["Authorization"] == "Bearer fake-arm-token"
    assert credential.scopes == [("https://management.azure.com/.default",)]


def test_reader_raises_the_http_status_of_a_refusal():
    forbidden = {"error": {"code": "AuthorizationFailed", "message": "no read"}}
    session = FakeSession((403, forbidden))
    reader = arm_rest.ArmReader(
        FakeCredential(), transport=RequestsTransport(session=session, session_owner=False)
    )
    with pytest.raises(HttpResponseError) as info:
        reader.get(IDENTITY_PATH, "2023-01-31")
    assert info.value.status_code == 403


def test_next_links_are_followed_without_adding_a_second_api_version():
    session = FakeSession(
        (
            200,
            {"value": [1], "nextLink": "https://management.azure.com/x?api-version=v&$skiptoken=2"},
        ),
        (200, {"value": [2]}),
    )
    reader = arm_rest.ArmReader(
        FakeCredential(), transport=RequestsTransport(session=session, session_owner=False)
    )
    assert arm_rest.get_all(reader, "/x", "v") == [1, 2]
    second = parse_qs(urlparse(session.requests[1]["url"]).query)
    assert second == {"api-version": ["v"], "$skiptoken": ["2"]}


# --- the lookup -----------------------------------------------------------------------------


@pytest.fixture
def arm(monkeypatch) -> RecordingArm:
    fake = RecordingArm({IDENTITY_PATH: IDENTITY})
    monkeypatch.setattr(system_identity, "ARM_FACTORY", lambda: fake)
    return fake


def test_create_reads_the_client_id_from_managed_identity(arm):
    result = system_identity.SystemIdentityProvider().create(
        {"resourceId": JOB_ID, "principalId": PRINCIPAL_ID}
    )
    assert arm.calls == [(IDENTITY_PATH, "2023-01-31", {})]
    assert result.outs == {"resourceId": JOB_ID, "clientId": CLIENT_ID, "principalId": PRINCIPAL_ID}
    assert "clientSecretUrl" not in str(result.outs), "the credential endpoint reached the state"


def test_a_recreated_identity_is_refused_not_passed_on(arm):
    with pytest.raises(AzureCallError, match="re-created meanwhile"):
        system_identity.SystemIdentityProvider().create(
            {"resourceId": JOB_ID, "principalId": "00000000-0000-4000-8000-000000000000"}
        )


def test_an_identity_without_client_id_yet_says_to_retry(arm):
    arm.routes[IDENTITY_PATH] = {"properties": {"principalId": PRINCIPAL_ID}}
    with pytest.raises(AzureCallError, match="no client id yet"):
        system_identity.SystemIdentityProvider().create({"resourceId": JOB_ID, "principalId": None})


def test_refresh_reports_the_current_identity_and_a_gone_resource(arm):
    provider = system_identity.SystemIdentityProvider()
    result = provider.read(IDENTITY_PATH, {"resourceId": JOB_ID, "principalId": "old"})
    assert result.outs["clientId"] == CLIENT_ID
    assert result.inputs == {"resourceId": JOB_ID, "principalId": PRINCIPAL_ID}
    arm.routes[IDENTITY_PATH] = http_error(404, "ResourceNotFound")
    assert provider.read(IDENTITY_PATH, {"resourceId": JOB_ID}).id == ""


def test_forbidden_names_the_role_it_needs(arm):
    arm.routes[IDENTITY_PATH] = http_error(403, "AuthorizationFailed")
    with pytest.raises(AzureCallError) as info:
        system_identity.SystemIdentityProvider().create({"resourceId": JOB_ID})
    assert info.value.kind == "forbidden"
    assert "Reader (or any role with */read) on the resource" in str(info.value)
    assert JOB_ID in str(info.value)


def test_update_looks_up_again_and_check_refuses_a_non_id():
    provider = system_identity.SystemIdentityProvider()
    assert provider.diff("id", {"resourceId": JOB_ID}, {"resourceId": JOB_ID + "x"}).changes
    assert not provider.diff("id", {"resourceId": JOB_ID}, {"resourceId": JOB_ID}).changes
    failures = provider.check({}, {"resourceId": "asa-dev"}).failures
    assert [f.property for f in failures] == ["resourceId"]
    assert provider.check({}, {"resourceId": system_identity.UNKNOWN}).failures == []


def test_the_real_factory_reads_arm_with_the_default_credential(monkeypatch):
    monkeypatch.setattr(system_identity, "default_credential", FakeCredential)
    assert isinstance(system_identity._default_arm(), arm_rest.ArmReader)
