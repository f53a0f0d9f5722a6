"""Helpers shared by the dynamic providers (scoring pipeline, SQL bootstrap, Stream Analytics).

* :func:`call_azure` runs one Azure SDK call, retries it while Azure throttles (HTTP 429/503)
  with bounded exponential backoff that honors ``Retry-After``, and turns any other failure
  into an :class:`~components.providers.azure_errors.AzureCallError` with a clear message.
* :func:`wait_for` waits for a long-running operation (an azure-core ``LROPoller``), bounded.
* :func:`run_operation` is the two together: start a long-running operation (``begin_*``),
  retried while throttled, and wait for its end, with one action, target and role for both.
* :func:`retry_while_forbidden` retries a call refused with HTTP 403 while a role assignment
  this deployment just made takes effect, for a bounded time, then names the role and scope.
* :func:`changed_keys` / :func:`diff_result` build a ``DiffResult`` that says exactly which
  inputs changed and replaces only for the keys that truly need it.
* :func:`default_credential` builds the one credential (GitHub OIDC in CI, else
  ``DefaultAzureCredential``) lazily, inside each call.
* :func:`pickled_as` keeps a provider class under the name deployed stacks know it by.

About pickling: Pulumi serializes a dynamic provider with dill together with the program.
Classes and functions of importable modules (like this one) are pickled *by reference*, so
module-level hooks keep working in the provider process; but anything stored on a provider
instance is pickled *by value*. Never keep a credential, client, lock or socket on a provider:
build them inside each method (that also keeps tokens out of the Pulumi state).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from components.providers.azure_errors import (
    AzureCallError,
    explain,
    is_forbidden,
    is_throttled,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C", bound=type)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep retrying a throttled call.

    Attempt ``n`` (1-based) that is throttled waits ``Retry-After`` if the service sent one,
    else ``base_delay * 2**(n-1)`` plus up to 10 % jitter; every wait is capped at
    ``max_delay`` and the call gives up after ``max_attempts`` attempts.
    ``sleep`` is injectable so tests do not wait.
    """

    max_attempts: int = 6
    base_delay: float = 2.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_delay, retry_after)
        backoff = self.base_delay * (2 ** (attempt - 1))
        return min(self.max_delay, backoff * (1.0 + 0.1 * random.random()))


DEFAULT_RETRY = RetryPolicy()


def call_azure(
    fn: Callable[..., T],
    *args: Any,
    action: str,
    target: str,
    required_role: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, retried while throttled; other failures become AzureCallError.

    ``action``/``target``/``required_role`` feed the error message (see
    :func:`components.providers.azure_errors.explain`).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(*args, **kwargs)
        except AzureCallError:
            raise
        except Exception as exc:
            if is_throttled(exc) and attempt < retry.max_attempts:
                wait = retry.delay(attempt, retry_after_seconds(exc))
                log.warning(
                    "%s on %s throttled (attempt %d of %d); retrying in %.1f s",
                    action,
                    target,
                    attempt,
                    retry.max_attempts,
                    wait,
                )
                retry.sleep(wait)
                continue
            raise explain(
                exc, action=action, target=target, required_role=required_role, attempts=attempt
            ) from exc


def wait_for(
    poller: Any,
    *,
    action: str,
    target: str,
    timeout_seconds: float = 600.0,
    required_role: str | None = None,
) -> Any:
    """The result of a long-running operation, waiting at most ``timeout_seconds``.

    Raises AzureCallError if the operation fails or is still running at the deadline (an
    unfinished disable must never be followed by a delete).
    """
    try:
        result = poller.result(timeout=timeout_seconds)
    except Exception as exc:
        raise explain(exc, action=action, target=target, required_role=required_role) from exc
    done = getattr(poller, "done", None)
    if callable(done) and not done():
        raise AzureCallError(
            f"{action} on {target} did not finish within {timeout_seconds:g} s; "
            "check its state in the Azure portal and run the deployment again.",
            status=None,
            kind="timeout",
            action=action,
            target=target,
        )
    return result


def run_operation(
    begin: Callable[..., Any],
    *args: Any,
    action: str,
    target: str,
    required_role: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout_seconds: float = 600.0,
    **kwargs: Any,
) -> Any:
    """The result of the long-running operation ``begin(*args, **kwargs)`` starts: the start is
    retried while throttled (:func:`call_azure`), the wait is bounded (:func:`wait_for`); a
    failure of either becomes one AzureCallError naming ``action``, ``target`` and the role."""
    poller = call_azure(
        begin,
        *args,
        action=action,
        target=target,
        required_role=required_role,
        retry=retry,
        **kwargs,
    )
    return wait_for(
        poller,
        action=action,
        target=target,
        timeout_seconds=timeout_seconds,
        required_role=required_role,
    )


@dataclass(frozen=True)
class PropagationWait:
    """How long a step keeps retrying HTTP 403 while a new role assignment takes effect.

    Azure RBAC: a new role assignment "can take up to 10 minutes" to be effective ("Troubleshoot
    Azure RBAC", learn.microsoft.com/azure/role-based-access-control/troubleshooting), so the
    default waits 10 minutes in 15-second steps. ``sleep`` and ``clock`` are injectable.
    """

    seconds: float = 600.0
    interval: float = 15.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


ROLE_PROPAGATION = PropagationWait()


def retry_while_forbidden(
    fn: Callable[[], T],
    *,
    role: str,
    scope: str,
    action: str,
    target: str,
    wait: PropagationWait = ROLE_PROPAGATION,
    refused: Callable[[BaseException], bool] = is_forbidden,
) -> T:
    """``fn()``, retried while Azure answers 403, for at most ``wait.seconds``.

    For steps that use a role this very deployment assigned (``role`` on ``scope``): a 403
    right after the assignment usually means it has not propagated yet. Any other failure is
    raised at once; a 403 that outlasts the wait becomes an AzureCallError naming the role and
    the scope, and how to check the assignment. ``refused`` narrows which 403s mean "this role"
    (e.g. only storage's, when the same call can also be refused by the workspace).
    """
    started = wait.clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            if not refused(exc):
                raise
            waited = wait.clock() - started
            if waited + wait.interval > wait.seconds:
                raise AzureCallError(
                    f"{action} on {target} was still refused (HTTP 403) after {waited:.0f} s and "
                    f"{attempt} attempts: it needs the role {role} on {scope}, which this "
                    "deployment assigns; Azure applies a new assignment within about 10 minutes. "
                    f'Check it with `az role assignment list --scope {scope} --role "{role}"`, '
                    "then run the deployment again.",
                    status=403,
                    kind="forbidden",
                    action=action,
                    target=target,
                ) from exc
            log.warning(
                "%s on %s refused (HTTP 403): waiting for %s on %s to take effect (%.0f of %.0f s)",
                action,
                target,
                role,
                scope,
                waited,
                wait.seconds,
            )
            wait.sleep(wait.interval)


def changed_keys(
    olds: Mapping[str, Any], news: Mapping[str, Any], keys: Iterable[str] | None = None
) -> list[str]:
    """Sorted input keys whose values differ (a missing key equals None).

    Keys starting with ``__`` (Pulumi's serialized ``__provider``) are never compared.
    ``keys`` restricts the comparison to the resource's declared inputs, so outputs that
    only the provider computes (kept in the old state) do not show up as changes.
    """
    names = set(keys) if keys is not None else set(olds) | set(news)
    return sorted(
        k
        for k in names
        if not k.startswith("__") and _normalize(olds.get(k)) != _normalize(news.get(k))
    )


def diff_result(
    olds: Mapping[str, Any],
    news: Mapping[str, Any],
    *,
    keys: Iterable[str] | None = None,
    replace_keys: Iterable[str] = (),
    delete_before_replace: bool = False,
):
    """A ``pulumi.dynamic.DiffResult`` naming what changed; replaces only for ``replace_keys``."""
    from pulumi.dynamic import DiffResult  # imported here: azure_errors users need no Pulumi

    changes = changed_keys(olds, news, keys)
    replace_set = set(replace_keys)
    replaces = [k for k in changes if k in replace_set]
    return DiffResult(
        changes=bool(changes),
        replaces=replaces,
        delete_before_replace=delete_before_replace if replaces else None,
    )


def default_credential() -> Any:
    """The one credential of the providers and the commands that talk to Azure.

    In a GitHub Actions job allowed to request OIDC tokens, with ``AZURE_CLIENT_ID`` and
    ``AZURE_TENANT_ID`` set: a client-assertion credential that fetches a fresh GitHub ID token
    whenever it needs one (:mod:`components.providers.github_oidc`), because the Azure CLI's
    OIDC login lasts ten minutes and is not refreshed (Azure/azure-cli#28708). Everywhere else:
    ``DefaultAzureCredential`` without interactive browser sign-in (deployments are headless;
    a laptop uses its `az login`)."""
    from components.providers.github_oidc import github_oidc_available, github_oidc_credential

    if github_oidc_available():
        return github_oidc_credential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def _normalize(value: Any) -> Any:
    """Compare lists/dicts/numbers structurally (state round-trips turn ints into floats)."""
    if isinstance(value, Mapping):
        return {k: _normalize(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def pickled_as(module: str) -> Callable[[C], C]:
    """Class decorator: the provider class answers to ``module`` as its ``__module__``.

    dill pickles a provider class *by reference* (module path and class name) into the
    ``__provider`` input of every dynamic resource, and ``pulumi refresh``/``destroy`` load it
    back by that name. The providers live in ``components/providers/`` but deployed stacks know
    them by their first home (``components.scoring_pipeline`` ...), which re-exports each
    class. Keeping that name keeps the stored bytes, and so every stack's state and plan, as
    they were, and old and new checkouts can both refresh a stack (the pickle fixtures in
    tests/fixtures/provider-pickles check it).
    """

    def pin(cls: C) -> C:
        cls.__module__ = module
        return cls

    return pin
