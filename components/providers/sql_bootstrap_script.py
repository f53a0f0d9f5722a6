"""The SQL bootstrap's T-SQL: what makes a fresh sensor database usable, as text.

What it applies (every statement is idempotent, so a re-run is always safe):

1. ``dbo.SensorReadings`` (``IF OBJECT_ID(...) IS NULL CREATE TABLE``) with its primary key
   (Device, Sensor, TS), plus a guarded index on TS for the extract step's time-window reads.
2. Contained database users for the Stream Analytics job's system-assigned identity (whose
   Entra name is the job's name) and the cluster's user-assigned identity (its resource
   name): ``CREATE USER [name] WITH SID = <client id as binary(16)>, TYPE = E``, guarded by
   a ``sys.database_principals`` lookup. A user of that name whose SID is another identity's
   (the job was re-created under the same name) is dropped first, so the user always maps to
   the identity that exists now.
3. Least-privilege grants on the table only: the job gets INSERT (to write windows) and
   SELECT (Stream Analytics tests its connection to the output table with a SELECT); the
   cluster gets SELECT. Identities dropped from the inputs on an update lose their users
   (before the new users are created: a SID belongs to one user at a time).

Why ``WITH SID`` and not ``FROM EXTERNAL PROVIDER``: the latter makes the server look the
name up in Microsoft Graph, which, when a service principal (the CI deployer) runs it, needs
the server's own identity to hold Graph read rights ("Microsoft Entra service principals with
Azure SQL"). With ``SID`` and ``TYPE = E`` nothing is looked up: for a service principal or
managed identity the SID is its application (client) id as ``binary(16)`` (CREATE USER
(Transact-SQL), arguments ``SID`` and ``TYPE``). The GUID becomes bytes the way SQL Server
casts a ``uniqueidentifier`` to ``varbinary(16)``: the first three groups little-endian,
the last two as written, which is Python's ``UUID.bytes_le``.

Names are quoted so no identity name can end an identifier or a literal early. Generating
the script needs no driver and no Pulumi; :mod:`components.providers.sql_bootstrap` runs it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from components.shared.hashing import stable_hash

TABLE = "dbo.SensorReadings"
_MAX_NAME_CHARS = 128  # sysname


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


def validate_client_id(value: Any, what: str) -> str:
    """A client (application) id: a GUID, or ValueError naming ``what``."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{what} must be a client id (a GUID), got {value!r}") from None


def sid_literal(client_id: str) -> str:
    """``0x...``: the client id as the ``binary(16)`` SID SQL Server stores for it, i.e.
    ``CAST(CAST('<client id>' AS uniqueidentifier) AS varbinary(16))``."""
    return "0x" + uuid.UUID(client_id).bytes_le.hex().upper()


@dataclass(frozen=True)
class DatabaseUser:
    """A managed identity as a contained database user: its Entra name and client id."""

    name: str
    client_id: str

    @classmethod
    def checked(cls, name: Any, client_id: Any, what: str) -> DatabaseUser:
        """Validated, or ValueError naming ``<what>Name`` / ``<what>ClientId``."""
        return cls(
            validate_name(name, f"{what}Name"),
            validate_client_id(client_id, f"{what}ClientId"),
        )


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


def _user_steps(user: DatabaseUser) -> list[Step]:
    name, sid = quote_literal(user.name), sid_literal(user.client_id)
    return [
        Step(
            f"replace user {user.name} of another identity",
            "IF EXISTS (SELECT 1 FROM sys.database_principals "
            f"WHERE name = {name} AND sid <> {sid})\n"
            f"DROP USER {quote_identifier(user.name)};",
        ),
        Step(
            f"user {user.name}",
            f"IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = {name})\n"
            f"CREATE USER {quote_identifier(user.name)} WITH SID = {sid}, TYPE = E;",
        ),
    ]


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
    job: DatabaseUser, cluster: DatabaseUser, retired_names: Iterable[str] = ()
) -> list[Step]:
    """The batches in the order they must run: table, retired users, users, grants.

    Retired users go before the new ones: a SID maps to one user of a database at a time, so
    an identity that only changed its name must lose its old user first.
    """
    steps = _table_steps()
    keep = {job.name, cluster.name}
    steps += [_drop_user_step(n) for n in dict.fromkeys(retired_names) if n and n not in keep]
    for user in dict.fromkeys([job, cluster]):
        steps += _user_steps(user)
    steps.append(_grant_step(job.name, "SELECT, INSERT"))
    steps.append(_grant_step(cluster.name, "SELECT"))
    return steps


def script_text(steps: Sequence[Step]) -> str:
    """The whole script as one text (``GO`` between batches), e.g. for review or sqlcmd."""
    return "\nGO\n".join(step.sql for step in steps) + "\nGO\n"


def script_hash(job: DatabaseUser, cluster: DatabaseUser) -> str:
    """Hash of the script for these users: it changes when the script would change."""
    return stable_hash(script_text(bootstrap_steps(job, cluster)))
