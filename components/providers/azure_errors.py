"""Azure SDK errors as one clear sentence: what was being done, on what, why it failed, what to do.

Dynamic providers (the scoring pipeline, the SQL bootstrap, the Stream Analytics start) call
Azure SDKs whose exceptions read like ``(AuthorizationFailed) The client '...' with object id
'...' does not have authorization to perform action 'Microsoft.MachineLearningServices/...'``.
``explain`` turns any such exception into an :class:`AzureCallError` whose message names the
action, the target and, for HTTP 403, the role the deploying identity is missing.

This module imports neither Pulumi nor any Azure client library beyond ``azure-core`` (it only
inspects exception attributes), so it is cheap to import and easy to test.

Usage::

    try:
        client.schedules.begin_disable(name).result()
    except Exception as exc:
        raise explain(exc, action="disable schedule", target=f"workspace {ws}",
                      required_role=f"AzureML Data Scientist on workspace {ws}") from exc

Most callers want :func:`components.providers.common.call_azure` instead, which also retries
throttled calls.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

# HTTP statuses Azure uses to say "slow down / try later" (ARM throttling, service busy).
THROTTLED_STATUSES = frozenset({429, 503})

_MAX_DETAIL_CHARS = 400


class AzureCallError(Exception):
    """An Azure call failed. ``str(error)`` is the full, user-facing explanation.

    Attributes: ``status`` (HTTP status or None), ``kind`` (one of ``not_found``,
    ``forbidden``, ``unauthenticated``, ``throttled``, ``conflict``, ``unreachable``,
    ``failed``), ``action`` and ``target`` as given to :func:`explain`.
    """

    def __init__(self, message: str, *, status: int | None, kind: str, action: str, target: str):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.action = action
        self.target = target


# Storage's error codes for "authenticated, but no data role here" (HTTP 403).
STORAGE_FORBIDDEN_CODES = frozenset({"AuthorizationPermissionMismatch", "AuthorizationFailure"})


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first (bounded).

    SDKs re-raise HTTP failures as their own exceptions (azure-ai-ml turns a storage 403 into
    a ``ValidationException`` raised ``from`` it); the HTTP status is on the cause.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _own_status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an azure-core exception, or of the one it was raised from (None for
    network or credential errors)."""
    for error in causes(exc):
        status = _own_status(error)
        if status is not None:
            return status
    return None


def is_forbidden(exc: BaseException) -> bool:
    """True when Azure refused the caller's authorization (HTTP 403, or storage's
    ``AuthorizationPermissionMismatch``), anywhere in the exception's chain."""
    if isinstance(exc, AzureCallError):
        return exc.kind == "forbidden"
    return any(
        _own_status(error) == 403 or getattr(error, "error_code", None) in STORAGE_FORBIDDEN_CODES
        for error in causes(exc)
    )


def is_throttled(exc: BaseException) -> bool:
    """True when Azure asked us to retry later (HTTP 429 or 503)."""
    return status_of(exc) in THROTTLED_STATUSES


def is_storage_forbidden(exc: BaseException) -> bool:
    """True when Azure Storage refused the caller's data access (its 403 error codes), anywhere
    in the chain: the caller lacks a blob data role on the account, or it has not applied yet."""
    return any(
        getattr(error, "error_code", None) in STORAGE_FORBIDDEN_CODES for error in causes(exc)
    )


def retry_after_seconds(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the service asked us to wait, from the response headers, or None.

    Honors ``retry-after-ms`` / ``x-ms-retry-after-ms`` (milliseconds) and ``Retry-After``
    (delta-seconds or an HTTP date), as azure-core's own retry policy does.
    """
    headers = _headers(exc)
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def explain(
    exc: BaseException,
    *,
    action: str,
    target: str,
    required_role: str | None = None,
    attempts: int | None = None,
) -> AzureCallError:
    """An :class:`AzureCallError` describing ``exc``; raise it ``from exc`` to keep the cause.

    ``action`` is a verb phrase ("create schedule batchscore-dev"), ``target`` names where
    ("workspace mlw-dev in resource group rg-dev"), ``required_role`` is what the deploying
    identity needs there ("AzureML Data Scientist on workspace mlw-dev"); ``attempts`` is
    mentioned for throttling that outlasted the retries.
    """
    if isinstance(exc, AzureCallError):
        return exc
    status = status_of(exc)
    detail = _detail(exc)
    kind, advice = _classify(exc, status, required_role, attempts)
    status_text = f" (HTTP {status})" if status is not None else ""
    message = f"{action} on {target} failed{status_text}: {advice}"
    if detail:
        message += f" Azure said: {detail}"
    return AzureCallError(message, status=status, kind=kind, action=action, target=target)


def _classify(
    exc: BaseException, status: int | None, required_role: str | None, attempts: int | None
) -> tuple[str, str]:
    name = type(exc).__name__
    if status == 404 or name == "ResourceNotFoundError":
        return "not_found", "it was not found (check the name, resource group and subscription)."
    if status == 403 or is_forbidden(exc):
        role = required_role or "a role that allows this action"
        return "forbidden", f"the deploying identity lacks the role {role}."
    if status == 401 or name in ("ClientAuthenticationError", "CredentialUnavailableError"):
        return (
            "unauthenticated",
            "no valid Azure credential (DefaultAzureCredential found none: run `az login`, "
            "or give the deployment a managed or workload identity).",
        )
    if status in THROTTLED_STATUSES:
        tries = f" after {attempts} attempts" if attempts else ""
        return "throttled", f"Azure kept throttling the request{tries}; try again later."
    if status == 409 or name == "ResourceExistsError":
        return "conflict", "it conflicts with the resource's current state."
    if name in ("ServiceRequestError", "ServiceRequestTimeoutError", "ServiceResponseError"):
        return "unreachable", "Azure could not be reached (network, DNS or proxy)."
    return "failed", "the service rejected the request."


def _detail(exc: BaseException) -> str:
    """The service's own message, on one line and bounded in length."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    text = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    text = " ".join(str(text).split())
    if code and code not in text:
        text = f"({code}) {text}"
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[: _MAX_DETAIL_CHARS - 1] + "…"
    return text


def _headers(exc: BaseException) -> dict[str, str]:
    response: Any = getattr(exc, "response", None)
    raw = getattr(response, "headers", None) or {}
    try:
        return {str(k).lower(): str(v) for k, v in raw.items()}
    except AttributeError:
        return {}
