"""Fakes of Azure Resource Manager for the code that reads it (components/providers/arm_rest.py).

* :class:`RecordingArm` stands in for an ``ArmGetter``: it answers GETs from a table of paths
  (a JSON body, or an exception to raise), records every call, and refuses any path it was
  not told about, so a test cannot pass on a request the real API would not answer.
* :func:`http_error` builds the ``HttpResponseError`` azure-core raises for a status.
* :class:`FakeSession` replaces the ``requests`` session under azure-core's real transport,
  so the pipeline (auth header, api-version, retries, errors) runs as it does against Azure.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import requests
from azure.core.exceptions import HttpResponseError


class FakeResponse:
    """The part of an HTTP response azure-core's error classes read."""

    def __init__(self, status: int, body: Mapping[str, Any] | None = None, headers=None):
        self.status_code = status
        self.reason = {403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        self.headers = dict(headers or {})
        self._body = json.dumps(body or {}).encode()

    def text(self, encoding=None):
        return self._body.decode()

    def body(self):
        return self._body


def http_error(status: int, code: str = "", message: str = "", headers=None) -> HttpResponseError:
    """What azure-core raises for an ARM error response (``status_code`` and the ARM error)."""
    body = {"error": {"code": code or f"Http{status}", "message": message or f"status {status}"}}
    error = HttpResponseError(response=FakeResponse(status, body, headers))
    error.status_code = status
    return error


class RecordingArm:
    """Answers ``get(path, api_version, params)`` from ``routes``; records each call."""

    def __init__(self, routes: Mapping[str, Any] | None = None):
        self.routes: dict[str, Any] = dict(routes or {})
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def get(self, path: str, api_version: str, params: Mapping[str, str] | None = None):
        self.calls.append((path, api_version, dict(params or {})))
        if path not in self.routes:
            raise AssertionError(f"unexpected ARM GET {path} (api-version {api_version})")
        answer = self.routes[path]
        if callable(answer):
            answer = answer(params or {})
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.calls]


class FakeSession:
    """A ``requests.Session`` stand-in: records requests, answers from a queue."""

    def __init__(self, *answers: tuple[int, Mapping[str, Any]]):
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def request(self, method, url, headers=None, **_kwargs):
        self.requests.append({"method": method, "url": url, "headers": dict(headers or {})})
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response.url = url
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(json.dumps(body).encode())
        response.raw.enforce_content_length = True  # type: ignore[attr-defined]
        return response

    def close(self):
        pass
