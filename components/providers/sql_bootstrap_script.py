"""The SQL bootstrap's T-SQL: what makes a fresh sensor database usable, as text.

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

Names are quoted so no identity name can end an identifier or a literal early. Generating
the script needs no driver and no Pulumi; :mod:`components.providers.sql_bootstrap` runs it.
"""

from __future__ import annotations

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
