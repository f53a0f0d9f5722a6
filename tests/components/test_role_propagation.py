"""Steps that use a role this deployment just assigned retry HTTP 403 for a bounded time and
then name the role and scope; the deployer's data-access wait against a storage fake that,
like Azure, refuses a new assignment until it has propagated."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from components.providers import common, data_access
from components.providers.azure_errors import AzureCallError, explain, is_forbidden
from tests.components.fake_arm import http_error

ACCOUNT = "stbatchscoredev1a2b3c"
SCOPE = (
    "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-dev/providers/"
    f"Microsoft.Storage/storageAccounts/{ACCOUNT}"
)
ROLE = "Storage Blob Data Contributor"


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class PropagatingStorage:
    """Blob data access of one principal: 403 (AuthorizationPermissionMismatch) until the role
    assignment has propagated, ``propagates_after`` seconds after it was made."""

    def __init__(self, clock: FakeClock, propagates_after: float | None):
        self.clock = clock
        self.propagates_after = propagates_after
        self.reads: list[tuple[str, str, float]] = []

    def list_one_blob(self, account: str, container: str) -> None:
        self.reads.append((account, container, self.clock.now))
        if self.propagates_after is None or self.clock.now < self.propagates_after:
            error = http_error(403, "AuthorizationPermissionMismatch")
            error.error_code = "AuthorizationPermissionMismatch"
            raise error


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(
        common, "ROLE_PROPAGATION", common.PropagationWait(sleep=fake.sleep, clock=fake)
    )
    return fake


def _props(**changes):
    props = {
        "accountName": ACCOUNT,
        "containerName": "raw",
        "role": ROLE,
        "scope": SCOPE,
        "assignmentId": SCOPE + "/providers/Microsoft.Authorization/roleAssignments/a1",
    }
    props.update(changes)
    return props


# --- the bounded retry ----------------------------------------------------------------------


def test_a_403_is_retried_until_the_role_applies(clock):
    storage = PropagatingStorage(clock, propagates_after=100)
    wait = common.PropagationWait(sleep=clock.sleep, clock=clock)
    common.retry_while_forbidden(
        lambda: storage.list_one_blob(ACCOUNT, "raw"),
        role=ROLE,
        scope=SCOPE,
        action="list",
        target="raw",
        wait=wait,
    )
    assert [t for _, _, t in storage.reads] == [0, 15, 30, 45, 60, 75, 90, 105]
    assert clock.sleeps == [15.0] * 7


def test_a_403_that_outlasts_the_wait_names_the_role_and_scope(clock):
    storage = PropagatingStorage(clock, propagates_after=None)  # never assigned
    wait = common.PropagationWait(seconds=60, interval=15, sleep=clock.sleep, clock=clock)
    with pytest.raises(AzureCallError) as info:
        common.retry_while_forbidden(
            lambda: storage.list_one_blob(ACCOUNT, "raw"),
            role=ROLE,
            scope=SCOPE,
            action="list blobs",
            target="container raw",
            wait=wait,
        )
    message = str(info.value)
    assert info.value.kind == "forbidden" and info.value.status == 403
    assert f"needs the role {ROLE} on {SCOPE}" in message
    assert f'az role assignment list --scope {SCOPE} --role "{ROLE}"' in message
    assert clock.now <= 60, "waited longer than the bound"
    assert [t for _, _, t in storage.reads] == [0, 15, 30, 45, 60]


def test_other_failures_are_not_retried(clock):
    calls = []

    def broken():
        calls.append(1)
        raise http_error(404, "ContainerNotFound")

    with pytest.raises(Exception, match="404|ContainerNotFound"):
        common.retry_while_forbidden(
            broken, role=ROLE, scope=SCOPE, action="a", target="t", wait=common.ROLE_PROPAGATION
        )
    assert calls == [1] and clock.sleeps == []


def test_a_403_wrapped_by_an_sdk_is_still_a_403():
    """azure-ai-ml re-raises a storage 403 as its own ValidationException ``from`` it."""

    class ValidationException(Exception):
        pass

    try:
        try:
            raise http_error(403, "AuthorizationPermissionMismatch")
        except Exception as inner:
            raise ValidationException("You don't have permission to alter this storage") from inner
    except ValidationException as outer:
        wrapped = outer
    assert is_forbidden(wrapped)
    explained = explain(wrapped, action="upload", target="ws", required_role=ROLE)
    assert explained.kind == "forbidden" and ROLE in str(explained)
    assert not is_forbidden(RuntimeError("connection reset"))


# --- the deployer's data-access wait --------------------------------------------------------


@pytest.fixture
def storage(monkeypatch, clock) -> PropagatingStorage:
    fake = PropagatingStorage(clock, propagates_after=200)
    monkeypatch.setattr(data_access, "PROBE", fake.list_one_blob)
    return fake


def test_create_returns_once_the_deployer_can_read_the_container(storage, clock):
    result = data_access.DataAccessWaitProvider().create(_props())
    assert storage.reads[-1] == (ACCOUNT, "raw", 210.0)
    assert all(read[2] < 200 for read in storage.reads[:-1])
    assert result.outs == _props()
    assert result.id == f"{SCOPE}/data-access/raw"


def test_create_gives_up_after_ten_minutes_naming_role_and_scope(storage, clock):
    storage.propagates_after = None
    with pytest.raises(AzureCallError) as info:
        data_access.DataAccessWaitProvider().create(_props())
    assert clock.now <= 600
    assert f"{ROLE} on {SCOPE}" in str(info.value)
    assert f"container raw of storage account {ACCOUNT}" in str(info.value)


def test_a_new_assignment_waits_again_and_delete_touches_nothing(storage, clock):
    provider = data_access.DataAccessWaitProvider()
    olds = _props()
    news = _props(assignmentId=SCOPE + "/providers/Microsoft.Authorization/roleAssignments/a2")
    assert provider.diff("id", olds, news).changes
    assert not provider.diff("id", olds, _props()).changes
    provider.update("id", olds, news)
    assert storage.reads, "the update did not wait for the new assignment"
    reads = len(storage.reads)
    provider.delete("id", news)
    assert len(storage.reads) == reads


def test_check_names_missing_inputs_and_waits_for_unknowns():
    provider = data_access.DataAccessWaitProvider()
    failures = provider.check({}, _props(accountName="", scope=None)).failures
    assert sorted(f.property for f in failures) == ["accountName", "scope"]
    assert provider.check({}, _props(accountName=data_access.UNKNOWN)).failures == []


def test_the_real_probe_lists_one_blob_name_as_the_default_credential(monkeypatch):
    made = []

    class FakeContainerClient:
        def __init__(self, account_url, container_name, credential):
            made.append((account_url, container_name, credential))
            self.closed = False

        def list_blob_names(self, results_per_page=None):
            made.append(("list_blob_names", results_per_page))
            return SimpleNamespace(by_page=lambda: iter([["model.skops"]]))

        def close(self):
            made.append("closed")

    credential = SimpleNamespace(close=lambda: made.append("credential closed"))
    monkeypatch.setattr(data_access, "default_credential", lambda: credential)
    monkeypatch.setitem(
        sys.modules, "azure.storage.blob", SimpleNamespace(ContainerClient=FakeContainerClient)
    )
    data_access._list_one_blob(ACCOUNT, "raw")
    assert made == [
        (f"https://{ACCOUNT}.blob.core.windows.net", "raw", credential),
        ("list_blob_names", 1),
        "closed",
        "credential closed",
    ]
