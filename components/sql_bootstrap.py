"""SqlBootstrap: the T-SQL that makes a fresh database usable, run by the deployment itself.

What it applies (every statement is idempotent, so a re-run is always safe):

1. ``dbo.SensorReadings`` (``IF OBJECT_ID(...) IS NULL CREATE TABLE``) with its primary key
   (Device, Sensor, TS), plus a guarded index on TS for the extract step's time-window reads.
2. Contained database users for the Stream Analytics job's system-assigned identity (whose
   Entra name is the job's name) and the cluster's user-assigned identity (its resource
   name): ``CREATE USER [name] FROM EXTERNAL PROVIDER``, each guarded by a
   ``sys.database_principals`` lookup.
3. Least-privilege grants on the table only: the job gets INSERT (to write windows) and
   SELECT (Stream Analytics tests its connection to the output table with a SELECT); the
   cluster gets SELECT. Identities dropped from the inputs on an update lose their users.

How it connects: Entra only. The deployer's ``DefaultAzureCredential`` token for Azure SQL is
handed to the driver as an access token (``SQL_COPT_SS_ACCESS_TOKEN``, 1256). The driver is
``mssql-python`` (Microsoft's own; pinned in requirements.txt): it ships the ODBC Driver 18
inside its wheel, so a deployer needs no apt repository or unixODBC set-up (only the common
``libltdl7``), unlike pyodbc. It is imported inside the method that connects, so tests and
``pulumi preview`` need no driver at all.

The deployer must be the server's Entra admin (or in the admin group): only it may create
the first contained users. When the deployer is a service principal, the server's identity
also needs Microsoft Graph read access (Directory Readers) to resolve the names.

Deleting the resource keeps the table, its rows and the users (the database itself goes
with its own resource); data is never dropped by a deployment.
"""

from __future__ import annotations

import logging
import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

from components.providers.azure_errors import explain
from components.providers.common import default_credential, diff_result
from components.shared.hashing import stable_hash

log = logging.getLogger(__name__)

TABLE = "dbo.SensorReadings"
SQL_TOKEN_SCOPE = "https://database.windows.net/.default"
SQL_COPT_SS_ACCESS_TOKEN = 1256
INPUT_KEYS = ("serverFqdn", "database", "jobIdentityName", "clusterIdentityName")
_MAX_NAME_CHARS = 128  # sysname
_FQDN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN (preview values)

# Connection attempts while the database wakes up (serverless auto-pause) or the network blips.
CONNECT_ATTEMPTS = 6
CONNECT_BASE_DELAY = 5.0
CONNECT_MAX_DELAY = 60.0


class SqlBootstrapError(Exception):
    """The bootstrap failed; the message says where and what the deployer should do."""


# --------------------------------------------------------------------------- the script


@dataclass(frozen=True)
class Step:
    """One T-SQL batch with a short name used in logs and error messages."""

    name: str
    sql: str


def quote_identifier(name: str) -> str:
    """``[name]`` with ``]`` doubled, so no name can end the identifier early."""
    return "[" + name.replace("]", "]]") + "]"


def quote_literal(text: str) -> str:
    """``N'text'`` with ``'`` doubled (a Unicode string literal)."""
    return "N'" + text.replace("'", "''") + "'"


def validate_name(value: Any, what: str) -> str:
    """An Entra principal name usable as a database user name, or ValueError naming ``what``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty name (got {value!r})")
    if len(value) > _MAX_NAME_CHARS:
        raise ValueError(f"{what} {value!r} is longer than {_MAX_NAME_CHARS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{what} {value!r} contains control characters")
    return value


def _table_steps() -> list[Step]:
    table_literal = quote_literal(TABLE)
    return [
        Step(
            "create table",
            f"IF OBJECT_ID({table_literal}, N'U') IS NULL\n"
            f"CREATE TABLE {TABLE} (\n"
            "    TS datetime2 NOT NULL,\n"
            "    Device nvarchar(64) NOT NULL,\n"
            "    Sensor nvarchar(64) NOT NULL,\n"
            "    Value float NULL,\n"
            "    MinValue float NULL,\n"
            "    MaxValue float NULL,\n"
            "    Count int NULL,\n"
            "    CONSTRAINT PK_SensorReadings PRIMARY KEY (Device, Sensor, TS)\n"
            ");",
        ),
        Step(
            "primary key",
            "IF NOT EXISTS (SELECT 1 FROM sys.key_constraints "
            f"WHERE parent_object_id = OBJECT_ID({table_literal}) AND type = N'PK')\n"
            f"ALTER TABLE {TABLE} ADD CONSTRAINT PK_SensorReadings "
            "PRIMARY KEY (Device, Sensor, TS);",
        ),
        Step(
            "time index",
            "IF NOT EXISTS (SELECT 1 FROM sys.indexes "
            f"WHERE object_id = OBJECT_ID({table_literal}) AND name = N'IX_SensorReadings_TS')\n"
            f"CREATE INDEX IX_SensorReadings_TS ON {TABLE} (TS) "
            "INCLUDE (Value, MinValue, MaxValue, Count);",
        ),
    ]


def _user_step(name: str) -> Step:
    return Step(
        f"user {name}",
        "IF NOT EXISTS (SELECT 1 FROM sys.database_principals "
        f"WHERE name = {quote_literal(name)})\n"
        f"CREATE USER {quote_identifier(name)} FROM EXTERNAL PROVIDER;",
    )


def _grant_step(name: str, permissions: str) -> Step:
    return Step(
        f"grant {permissions} to {name}",
        f"GRANT {permissions} ON OBJECT::{TABLE} TO {quote_identifier(name)};",
    )


def _drop_user_step(name: str) -> Step:
    return Step(
        f"drop user {name}",
        "IF EXISTS (SELECT 1 FROM sys.database_principals "
        f"WHERE name = {quote_literal(name)})\n"
        f"DROP USER {quote_identifier(name)};",
    )


def bootstrap_steps(
    job_identity_name: str, cluster_identity_name: str, retired_names: Iterable[str] = ()
) -> list[Step]:
    """The batches in the order they must run: table, users, grants, then retired users."""
    job = validate_name(job_identity_name, "jobIdentityName")
    cluster = validate_name(cluster_identity_name, "clusterIdentityName")
    steps = _table_steps()
    steps += [_user_step(name) for name in dict.fromkeys([job, cluster])]
    steps.append(_grant_step(job, "SELECT, INSERT"))
    steps.append(_grant_step(cluster, "SELECT"))
    keep = {job, cluster}
    steps += [_drop_user_step(n) for n in dict.fromkeys(retired_names) if n and n not in keep]
    return steps


def script_text(steps: Sequence[Step]) -> str:
    """The whole script as one text (``GO`` between batches), e.g. for review or sqlcmd."""
    return "\nGO\n".join(step.sql for step in steps) + "\nGO\n"


def script_hash(job_identity_name: str, cluster_identity_name: str) -> str:
    """Hash of the script for these identities: it changes when the script would change."""
    return stable_hash(script_text(bootstrap_steps(job_identity_name, cluster_identity_name)))


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
    elif "could not be found" in lowered or "33130" in text or "duplicate display name" in lowered:
        hint = (
            "Entra could not resolve the identity name: it must be the managed identity's exact "
            "name (the job name for a system-assigned identity), unique in the tenant; when "
            "the deployer is a service principal the server identity needs Directory Readers."
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


def _token_struct(token: str) -> bytes:
    """The access-token attribute value the ODBC driver expects: length + UTF-16-LE bytes."""
    raw = token.encode("utf-16-le")
    return struct.pack(f"<I{len(raw)}s", len(raw), raw)


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
                token = credential.get_token(SQL_TOKEN_SCOPE).token
            except Exception as exc:
                raise explain(exc, action="get an Entra token for Azure SQL", target=where) from exc
            try:
                return mssql_python.connect(
                    conn_str,
                    autocommit=True,
                    attrs_before={SQL_COPT_SS_ACCESS_TOKEN: _token_struct(token)},
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


def apply_bootstrap(props: Mapping[str, Any], retired_names: Iterable[str] = ()) -> str:
    """Connect and run the script for ``props``; returns the script hash."""
    steps = bootstrap_steps(
        props["jobIdentityName"], props["clusterIdentityName"], retired_names=retired_names
    )
    where = f"database {props['database']} on {props['serverFqdn']}"
    # Looked up through the module at call time so tests can swap in a fake connection.
    connection = open_connection(props["serverFqdn"], props["database"])
    try:
        run_steps(connection, steps, where)
    finally:
        connection.close()
    return script_hash(props["jobIdentityName"], props["clusterIdentityName"])


# ----------------------------------------------------------------------- the provider


class SqlBootstrapProvider(dynamic.ResourceProvider):
    """Create and update run the (idempotent) script; delete keeps the data."""

    serialize_as_secret_always = False  # it captures no secret: credentials live in methods

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = []
        for key in INPUT_KEYS:
            value = news.get(key)
            if value == _UNKNOWN:
                continue  # known only after the resources it comes from exist
            try:
                if key == "serverFqdn":
                    connection_string(str(value), "probe")
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
        return script_hash(props.get("jobIdentityName"), props.get("clusterIdentityName"))
    except ValueError:
        return None


# ---------------------------------------------------------------------- the component


class _SqlBootstrapResource(dynamic.Resource, module="batchscore", name="SqlBootstrap"):
    scriptHash: pulumi.Output[str]  # noqa: N815 (dynamic outputs keep their state key)

    def __init__(
        self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(SqlBootstrapProvider(), name, {**props, "scriptHash": None}, opts)


@dataclass
class SqlBootstrapArgs:
    """Where to connect and whose users to create.

    ``job_identity_name`` is the Stream Analytics job's name (its system-assigned identity
    carries it); ``cluster_identity_name`` the name of the cluster's user-assigned identity.
    """

    server_fqdn: pulumi.Input[str]
    database: pulumi.Input[str]
    job_identity_name: pulumi.Input[str]
    cluster_identity_name: pulumi.Input[str]


class SqlBootstrap(pulumi.ComponentResource):
    """Table, contained users and grants in the sensor database (see the module docstring).

    ``script_hash`` identifies the applied script. Make the Stream Analytics start depend on
    this component so the job never starts before its table and user exist.
    """

    script_hash: pulumi.Output[str]

    def __init__(
        self, name: str, args: SqlBootstrapArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:SqlBootstrap", name, None, opts)
        self.script = _SqlBootstrapResource(
            f"{name}-tsql",
            {
                "serverFqdn": args.server_fqdn,
                "database": args.database,
                "jobIdentityName": args.job_identity_name,
                "clusterIdentityName": args.cluster_identity_name,
            },
            pulumi.ResourceOptions(parent=self),
        )
        self.script_hash = self.script.scriptHash
        self.register_outputs({"scriptHash": self.script_hash})
