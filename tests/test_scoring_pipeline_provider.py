"""The scoring-pipeline dynamic provider against a recording fake ML client, and its helpers."""

from __future__ import annotations

import email.utils
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from components import azure_errors, dynamic_common
from components.azure_errors import AzureCallError


class FakeResponse:
    """Just enough of an azure-core HTTP response for HttpResponseError."""

    def __init__(self, status: int, body: str = "", headers: dict | None = None):
        self.status_code = status
        self.reason = {403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        self.headers = headers or {}
        self._body = body

    def text(self) -> str:
        return self._body


def http_error(status: int, code: str = "", message: str = "", headers=None):
    body = f'{{"error": {{"code": "{code}", "message": "{message}"}}}}' if code else ""
    return HttpResponseError(response=FakeResponse(status, body, headers))


class RecordingSleep:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# --- azure_errors / dynamic_common ---------------------------------------------------------


def test_retry_after_header_forms():
    assert azure_errors.retry_after_seconds(http_error(429, headers={"Retry-After": "7"})) == 7
    ms = http_error(429, headers={"x-ms-retry-after-ms": "1500"})
    assert azure_errors.retry_after_seconds(ms) == 1.5
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    waited = azure_errors.retry_after_seconds(
        http_error(503, headers={"Retry-After": date}), now=now
    )
    assert 28 <= waited <= 31
    assert azure_errors.retry_after_seconds(http_error(429)) is None


def test_call_azure_retries_throttling_with_backoff_then_succeeds():
    sleep = RecordingSleep()
    policy = dynamic_common.RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=10.0, sleep=sleep)
    outcomes = [http_error(429, headers={"Retry-After": "3"}), http_error(503), "ok"]

    def flaky():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert dynamic_common.call_azure(flaky, action="get x", target="ws", retry=policy) == "ok"
    assert sleep.waits[0] == 3  # Retry-After honored
    assert 2.0 <= sleep.waits[1] <= 2.2  # exponential: base * 2**(2-1), plus jitter
    assert outcomes == []


def test_call_azure_gives_up_after_bounded_attempts():
    sleep = RecordingSleep()
    policy = dynamic_common.RetryPolicy(
        max_attempts=3, base_delay=100.0, max_delay=5.0, sleep=sleep
    )
    calls = []

    def always_throttled():
        calls.append(1)
        raise http_error(429, "TooManyRequests", "slow down")

    with pytest.raises(AzureCallError) as info:
        dynamic_common.call_azure(always_throttled, action="get x", target="ws", retry=policy)
    assert len(calls) == 3
    assert sleep.waits == [5.0, 5.0]  # capped by max_delay
    assert info.value.kind == "throttled"
    assert "after 3 attempts" in str(info.value)


def test_forbidden_names_the_missing_role_and_the_service_message():
    def forbidden():
        raise http_error(403, "AuthorizationFailed", "client abc has no authorization")

    with pytest.raises(AzureCallError) as info:
        dynamic_common.call_azure(
            forbidden,
            action="create schedule s1",
            target="workspace mlw-dev",
            required_role="AzureML Data Scientist on workspace mlw-dev",
        )
    text = str(info.value)
    assert info.value.kind == "forbidden" and info.value.status == 403
    assert "AzureML Data Scientist on workspace mlw-dev" in text
    assert "create schedule s1 on workspace mlw-dev" in text
    assert "AuthorizationFailed" in text


def test_not_found_is_not_retried():
    calls = []

    def missing():
        calls.append(1)
        raise ResourceNotFoundError("schedule s1 not found")

    with pytest.raises(AzureCallError) as info:
        dynamic_common.call_azure(missing, action="get schedule s1", target="ws")
    assert calls == [1]
    assert info.value.kind == "not_found"


def test_wait_for_refuses_an_unfinished_operation():
    class SlowPoller:
        def result(self, timeout=None):
            return None

        def done(self):
            return False

    with pytest.raises(AzureCallError, match="did not finish within 5 s"):
        dynamic_common.wait_for(SlowPoller(), action="disable s1", target="ws", timeout_seconds=5)


def test_changed_keys_ignores_provider_key_and_int_float_round_trips():
    olds = {"a": 1, "b": {"x": 2}, "__provider": "old", "c": None}
    news = {"a": 1.0, "b": {"x": 3}, "__provider": "new"}
    assert dynamic_common.changed_keys(olds, news) == ["b"]
    result = dynamic_common.diff_result(olds, news, replace_keys=["a"])
    assert result.changes is True and result.replaces == []


def test_hash_folder_changes_with_content_only(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    first = dynamic_common.hash_folder(tmp_path)
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"other junk")
    assert dynamic_common.hash_folder(tmp_path) == first
    (tmp_path / "a.py").write_text("x = 2\n")
    assert dynamic_common.hash_folder(tmp_path) != first
