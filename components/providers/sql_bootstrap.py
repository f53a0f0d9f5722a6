"""The SqlBootstrap component's dynamic provider: runs the bootstrap T-SQL
(:mod:`components.providers.sql_bootstrap_script`) in the sensor database at deploy time.

How it connects: Entra only. The deployer's ``DefaultAzureCredential`` token for Azure SQL is
handed to the driver as an access token, packed by :mod:`scoring.data.sql_token` (the one
packing the extract step uses too). The driver is
``mssql-python`` (Microsoft's own; pinned in requirements.txt): it ships the ODBC Driver 18
inside its wheel, so a deployer needs no apt repository or unixODBC set-up (only the common
``libltdl7``), unlike pyodbc. It is imported inside the method that connects, so tests and
``pulumi preview`` need no driver at all.

The deployer must be the server's Entra admin (or in the admin group): only it may create
the first contained users. The users are created from the identities' client ids
(``WITH SID ... TYPE = E``, see :mod:`components.providers.sql_bootstrap_script`), so neither
the deployer nor the server needs Microsoft Graph rights, whoever deploys.

Deleting the resource keeps the table, its rows and the users (the database itself goes
with its own resource); data is never dropped by a deployment.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
from pulumi.runtime.rpc import UNKNOWN  # a value known only after the deployment

from components.providers.azure_errors import explain
from components.providers.common import default_credential, diff_result, pickled_as
from components.providers.sql_bootstrap_script import (
    TABLE,
    DatabaseUser,
    Step,
    bootstrap_steps,
    script_hash,
    validate_client_id,
    validate_name,
)
from scoring.data.sql_token import (
    AZURE_SQL_SCOPE,
    SQL_COPT_SS_ACCESS_TOKEN,
    access_token_struct,
)

log = logging.getLogger(__name__)

INPUT_KEYS = (
    "serverFqdn",
    "database",
    "jobIdentityName",
    "jobIdentityClientId",
    "clusterIdentityName",
    "clusterIdentityClientId",
)
_FQDN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")

# Connection attempts while the database wakes up (serverless auto-pause) or the network blips.
CONNECT_ATTEMPTS = 6
CONNECT_BASE_DELAY = 5.0
CONNECT_MAX_DELAY = 60.0


class SqlBootstrapError(Exception):
    """The bootstrap failed; the message says where and what the deployer should do."""


# ------------------------------------------------------------------------- running it


def run_steps(connection: Any, steps: Sequence[Step], where: str) -> None:
    """Execute each step on ``connection`` (DB-API, autocommit) in order; stop at the first
    failure with a message naming the step and what to do."""
    cursor = connection.cursor()
    try:
        for step in steps:
            log.info("SQL bootstrap on %s: %s", where, step.name)
            try:
                cursor.execute(step.sql)
            except Exception as exc:
                raise SqlBootstrapError(
                    f"SQL bootstrap step '{step.name}' on {where} failed: {_advice(exc)}"
                ) from exc
    finally:
        cursor.close()


def _advice(exc: BaseException) -> str:
    """What the SQL error means for the deployer, plus the driver's own first line."""
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "login failed" in lowered or "18456" in text:
        hint = (
            "login failed: the deploying identity must be the SQL server's Entra admin or a "
            "member of the Entra admin group (config sqlAdminLogin / sqlAdminObjectId)."
        )
    elif "not allowed to access the server" in lowered or "40615" in text:
        hint = (
            "the server's firewall refused this machine's address: add it to the stack config "
            "sqlFirewallIpRanges, or deploy from an allowed network."
        )
    elif "already exists" in lowered or "15023" in text or "15063" in text:
        hint = (
            "a database user with this name or SID already exists for another principal: drop "
            "it (DROP USER [name]) as the Entra admin, then run the deployment again."
        )
    elif "permission" in lowered:
        hint = (
            "the deploying identity lacks permission in the database (it must be the Entra admin)."
        )
    elif "failed to load the driver" in lowered:
        hint = (
            "the mssql-python driver could not load its bundled ODBC driver: install libltdl7 "
            "(apt-get install libltdl7) on the deploying machine."
        )
    else:
        hint = "the database rejected the statement."
    return f"{hint} Driver said: {text[:400]}"


def _is_transient(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in (
            "40613",  # database not currently available (waking from auto-pause)
            "not currently available",
            "40197",  # service error processing the request, retry
            "40501",  # service busy
            "tcp provider",
            "login timeout expired",
            "timeout",
        )
    )


def connection_string(server_fqdn: str, database: str) -> str:
    if not _FQDN.match(server_fqdn):
        raise SqlBootstrapError(f"serverFqdn {server_fqdn!r} is not a host name")
    db = validate_name(database, "database").replace("}", "}}")
    return f"Server=tcp:{server_fqdn},1433;Database={{{db}}};Encrypt=yes;TrustServerCertificate=no;"


def open_connection(
    server_fqdn: str, database: str, *, sleep: Callable[[float], None] = time.sleep
) -> Any:
    """A DB-API connection to the database as the deployer (Entra token), autocommit on.

    This is the code that runs against Azure; tests replace it with a fake connection.
    Transient failures (a serverless database waking up, network blips) are retried with
    exponential backoff, bounded to about three minutes.
    """
    import mssql_python  # lazy: tests and previews need no driver

    where = f"database {database} on {server_fqdn}"
    conn_str = connection_string(server_fqdn, database)
    credential = default_credential()
    try:
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                token = credential.get_token(AZURE_SQL_SCOPE).token
            except Exception as exc:
                raise explain(exc, action="get an Entra token for Azure SQL", target=where) from exc
            try:
                return mssql_python.connect(
                    conn_str,
                    autocommit=True,
                    attrs_before={SQL_COPT_SS_ACCESS_TOKEN: access_token_struct(token)},
                    timeout=30,
                )
            except Exception as exc:
                if attempt < CONNECT_ATTEMPTS and _is_transient(exc):
                    wait = min(CONNECT_MAX_DELAY, CONNECT_BASE_DELAY * 2 ** (attempt - 1))
                    log.warning(
                        "connecting to %s failed (%s); retrying in %.0f s", where, exc, wait
                    )
                    sleep(wait)
                    continue
                raise SqlBootstrapError(f"connecting to {where} failed: {_advice(exc)}") from exc
    finally:
        close = getattr(credential, "close", None)
        if callable(close):
            close()
    raise AssertionError("unreachable")  # the loop returns or raises


def users_of(props: Mapping[str, Any]) -> tuple[DatabaseUser, DatabaseUser]:
    """The job's and the cluster's database users (ValueError naming a bad input)."""
    return (
        DatabaseUser.checked(
            props.get("jobIdentityName"), props.get("jobIdentityClientId"), "jobIdentity"
        ),
        DatabaseUser.checked(
            props.get("clusterIdentityName"),
            props.get("clusterIdentityClientId"),
            "clusterIdentity",
        ),
    )


def apply_bootstrap(props: Mapping[str, Any], retired_names: Iterable[str] = ()) -> str:
    """Connect and run the script for ``props``; returns the script hash."""
    job, cluster = users_of(props)
    steps = bootstrap_steps(job, cluster, retired_names=retired_names)
    where = f"database {props['database']} on {props['serverFqdn']}"
    # Looked up through the module at call time so tests can swap in a fake connection.
    connection = open_connection(props["serverFqdn"], props["database"])
    try:
        run_steps(connection, steps, where)
    finally:
        connection.close()
    return script_hash(job, cluster)


# ----------------------------------------------------------------------- the provider


@pickled_as("components.sql_bootstrap")  # re-exported there
class SqlBootstrapProvider(dynamic.ResourceProvider):
    """Create and update run the (idempotent) script; delete keeps the data."""

    serialize_as_secret_always = False  # it captures no secret: credentials live in methods

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = []
        for key in INPUT_KEYS:
            value = news.get(key)
            if value == UNKNOWN:
                continue  # known only after the resources it comes from exist
            try:
                if key == "serverFqdn":
                    connection_string(str(value), "probe")
                elif key.endswith("ClientId"):
                    validate_client_id(value, key)
                else:
                    validate_name(value, key)
            except (ValueError, SqlBootstrapError) as exc:
                failures.append(dynamic.CheckFailure(key, str(exc)))
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        result = diff_result(olds, news, keys=INPUT_KEYS)
        if not result.changes and olds.get("scriptHash") != _hash_or_none(news):
            return dynamic.DiffResult(changes=True, replaces=[])  # the script itself changed
        return result

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        applied = apply_bootstrap(props)
        return dynamic.CreateResult(
            f"{props['serverFqdn']}/{props['database']}", _outputs(props, applied)
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        same_database = (olds.get("serverFqdn"), olds.get("database")) == (
            news["serverFqdn"],
            news["database"],
        )
        retired = (
            [olds.get("jobIdentityName"), olds.get("clusterIdentityName")] if same_database else []
        )
        applied = apply_bootstrap(news, retired_names=[n for n in retired if n])
        return dynamic.UpdateResult(_outputs(news, applied))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        log.info(
            "SQL bootstrap of %s removed from the stack; table %s and its users are kept",
            _id,
            TABLE,
        )


def _outputs(props: Mapping[str, Any], applied_hash: str) -> dict[str, Any]:
    outs = {k: props[k] for k in INPUT_KEYS}
    outs["scriptHash"] = applied_hash
    return outs


def _hash_or_none(props: Mapping[str, Any]) -> str | None:
    try:
        return script_hash(*users_of(props))
    except ValueError:
        return None


# ------------------------------------------------------------------------ the dynamic resource


class SqlBootstrapResource(dynamic.Resource, module="batchscore", name="SqlBootstrap"):
    """The applied script as a dynamic resource; declared only by the SqlBootstrap component."""

    scriptHash: pulumi.Output[str]  # noqa: N815 (dynamic outputs keep their state key)

    def __init__(
        self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(SqlBootstrapProvider(), name, {**props, "scriptHash": None}, opts)
