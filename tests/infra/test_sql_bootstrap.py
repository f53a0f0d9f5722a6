"""The SQL bootstrap: its T-SQL (idempotent, least privilege, safely quoted), its order and
re-runs against a fake database, its connection code and errors, and the component."""

from __future__ import annotations

import re
import struct
import sys
import types
from dataclasses import dataclass, field

import pulumi
import pytest

from components import sql_bootstrap as sb_component
from components.providers import sql_bootstrap as sb
from components.providers import sql_bootstrap_script as script

JOB = "asa-batchscore-dev"
CLUSTER = "id-cluster-dev"

_IDENT = r"\[((?:[^\]]|\]\])*)\]"
_LITERAL = r"N'((?:[^']|'')*)'"


# The statement shapes the fake database understands (guard + action, nothing else).
CREATE_TABLE = rf"IF OBJECT_ID\({_LITERAL}, N'U'\) IS NULL\nCREATE TABLE (\S+) \(.*"
ADD_KEY = (
    r"IF NOT EXISTS \(SELECT 1 FROM sys.key_constraints WHERE parent_object_id = "
    rf"OBJECT_ID\({_LITERAL}\) AND type = N'PK'\)\n"
    r"ALTER TABLE (\S+) ADD CONSTRAINT PK_SensorReadings PRIMARY KEY \(Device, Sensor, TS\);"
)
CREATE_INDEX = (
    r"IF NOT EXISTS \(SELECT 1 FROM sys.indexes WHERE object_id = "
    rf"OBJECT_ID\({_LITERAL}\) AND name = {_LITERAL}\)\n"
    r"CREATE INDEX (\S+) ON (\S+) \(TS\) INCLUDE \(.*\);"
)
CREATE_USER = (
    rf"IF NOT EXISTS \(SELECT 1 FROM sys.database_principals WHERE name = {_LITERAL}\)\n"
    rf"CREATE USER {_IDENT} FROM EXTERNAL PROVIDER;"
)
DROP_USER = (
    rf"IF EXISTS \(SELECT 1 FROM sys.database_principals WHERE name = {_LITERAL}\)\n"
    rf"DROP USER {_IDENT};"
)
GRANT = rf"GRANT ([A-Z, ]+) ON OBJECT::(\S+) TO {_IDENT};"


def _ident(text: str) -> str:
    return text.replace("]]", "]")


def _literal(text: str) -> str:
    return text.replace("''", "'")


@dataclass
class FakeDatabase:
    """Interprets exactly the statement shapes the bootstrap uses, like SQL Server would.

    Unguarded creates of existing objects fail, grants need the table and the user, and any
    statement it does not recognise fails loudly.
    """

    tables: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    indexes: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    grants: dict[str, set[str]] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    fail_with: Exception | None = None
    closed: bool = False

    def execute(self, sql: str) -> None:
        self.executed.append(sql)
        if self.fail_with is not None:
            raise self.fail_with
        if m := re.fullmatch(CREATE_TABLE, sql, re.S):
            assert _literal(m.group(1)) == m.group(2), "guard and CREATE name different tables"
            if m.group(2) not in self.tables:
                self.tables.add(m.group(2))
                if "PRIMARY KEY (Device, Sensor, TS)" in sql:
                    self.keys.add(m.group(2))
        elif m := re.fullmatch(ADD_KEY, sql):
            assert _literal(m.group(1)) == m.group(2)
            self._need_table(m.group(2))
            self.keys.add(m.group(2))
        elif m := re.fullmatch(CREATE_INDEX, sql):
            assert _literal(m.group(2)) == m.group(3) and _literal(m.group(1)) == m.group(4)
            self._need_table(m.group(4))
            self.indexes.add(m.group(3))
        elif m := re.fullmatch(CREATE_USER, sql):
            guarded, created = _literal(m.group(1)), _ident(m.group(2))
            assert guarded == created, f"guard checks {guarded!r} but creates {created!r}"
            self.users.add(created)
        elif m := re.fullmatch(DROP_USER, sql):
            assert _literal(m.group(1)) == _ident(m.group(2))
            self.users.discard(_ident(m.group(2)))
            self.grants.pop(_ident(m.group(2)), None)
        elif m := re.fullmatch(GRANT, sql):
            self._need_table(m.group(2))
            user = _ident(m.group(3))
            if user not in self.users:
                raise RuntimeError(f"Cannot find the user '{user}'")
            perms = {p.strip() for p in m.group(1).split(",")}
            self.grants.setdefault(user, set()).update(f"{p} ON {m.group(2)}" for p in perms)
        else:
            raise RuntimeError(f"FakeDatabase does not understand: {sql!r}")

    def _need_table(self, name: str) -> None:
        if name not in self.tables:
            raise RuntimeError(f"Cannot find the object '{name}'")

    # DB-API surface
    def cursor(self):
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


class FakeCursor:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def execute(self, sql: str):
        self.db.execute(sql)

    def close(self):
        pass


@pytest.fixture
def fake_db(monkeypatch) -> FakeDatabase:
    db = FakeDatabase()
    opened: list[tuple[str, str]] = []

    def fake_open(server, database, **_):
        opened.append((server, database))
        db.closed = False
        return db

    monkeypatch.setattr(sb, "open_connection", fake_open)
    db.opened = opened  # type: ignore[attr-defined]
    return db


def _props(job=JOB, cluster=CLUSTER):
    return {
        "serverFqdn": "sql-dev.database.windows.net",
        "database": "sensors",
        "jobIdentityName": job,
        "clusterIdentityName": cluster,
    }


# --- the script as text -------------------------------------------------------------------


def test_every_create_alter_and_drop_is_guarded():
    for step in script.bootstrap_steps(JOB, CLUSTER, retired_names=["old-identity"]):
        body = step.sql.upper()
        if re.search(r"\b(CREATE|ALTER|DROP)\b", body):
            assert body.startswith(("IF OBJECT_ID(", "IF NOT EXISTS (", "IF EXISTS (")), (
                f"step '{step.name}' is not guarded: {step.sql}"
            )


def test_table_matches_the_column_contract():
    create = script.bootstrap_steps(JOB, CLUSTER)[0].sql
    for column in (
        "TS datetime2 NOT NULL",
        "Device nvarchar(64) NOT NULL",
        "Sensor nvarchar(64) NOT NULL",
        "Value float",
        "MinValue float",
        "MaxValue float",
        "Count int",
    ):
        assert column in create, f"missing column definition {column!r}"
    assert "PRIMARY KEY (Device, Sensor, TS)" in create


def test_grants_are_least_privilege_on_the_table_only():
    grants = [s.sql for s in script.bootstrap_steps(JOB, CLUSTER) if s.sql.startswith("GRANT")]
    assert grants == [
        f"GRANT SELECT, INSERT ON OBJECT::dbo.SensorReadings TO [{JOB}];",
        f"GRANT SELECT ON OBJECT::dbo.SensorReadings TO [{CLUSTER}];",
    ]
    text = script.script_text(script.bootstrap_steps(JOB, CLUSTER)).upper()
    for broad in ("ALTER ROLE", "DB_OWNER", "DB_DATAWRITER", "CONTROL", "ON DATABASE", "SCHEMA::"):
        assert broad not in text, f"script grants something broad: {broad}"


@pytest.mark.parametrize(
    "name",
    ["job]; DROP TABLE dbo.SensorReadings; --", "o'brien", "name with ]] two", "ünïcode-jöb"],
)
def test_hostile_names_stay_one_identifier_and_one_literal(name):
    db = FakeDatabase()
    sb.run_steps(db, script.bootstrap_steps(name, CLUSTER), "test")
    assert db.users == {name, CLUSTER}
    assert db.grants[name] == {"SELECT ON dbo.SensorReadings", "INSERT ON dbo.SensorReadings"}
    assert db.tables == {"dbo.SensorReadings"}


def test_quoting_doubles_the_closing_characters():
    assert script.quote_identifier("a]b") == "[a]]b]"
    assert script.quote_literal("a'b") == "N'a''b'"


@pytest.mark.parametrize(
    ("job", "cluster", "message"),
    [
        ("", CLUSTER, "jobIdentityName must be a non-empty name"),
        (JOB, "   ", "clusterIdentityName must be a non-empty name"),
        (JOB, "x" * 129, "clusterIdentityName 'xxx"),
        ("bad\nname", CLUSTER, "jobIdentityName 'bad\\nname' contains control characters"),
    ],
)
def test_bad_names_are_refused_naming_the_input(job, cluster, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        script.bootstrap_steps(job, cluster)


# --- running it -----------------------------------------------------------------------------


def test_runs_table_then_users_then_grants():
    db = FakeDatabase()
    sb.run_steps(db, script.bootstrap_steps(JOB, CLUSTER), "test")

    def first(pattern):
        return next(i for i, sql in enumerate(db.executed) if re.search(pattern, sql))

    def last(pattern):
        return max(i for i, sql in enumerate(db.executed) if re.search(pattern, sql))

    assert last("CREATE (TABLE|INDEX)|ADD CONSTRAINT") < first("CREATE USER")
    assert last("CREATE USER") < first("^GRANT")
    assert db.keys == {"dbo.SensorReadings"}
    assert db.grants == {
        JOB: {"SELECT ON dbo.SensorReadings", "INSERT ON dbo.SensorReadings"},
        CLUSTER: {"SELECT ON dbo.SensorReadings"},
    }


def test_rerun_is_safe_and_changes_nothing():
    db = FakeDatabase()
    steps = script.bootstrap_steps(JOB, CLUSTER)
    sb.run_steps(db, steps, "test")
    state = (set(db.tables), set(db.users), {k: set(v) for k, v in db.grants.items()})
    sb.run_steps(db, steps, "test")
    assert (db.tables, db.users, db.grants) == state


def test_same_identity_for_job_and_cluster_is_created_once():
    steps = script.bootstrap_steps(JOB, JOB)
    assert sum("CREATE USER" in s.sql for s in steps) == 1


@pytest.mark.parametrize(
    ("driver_error", "expected"),
    [
        (
            "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Login failed for user "
            "'<token-identified principal>'. (18456)",
            "must be the SQL server's Entra admin or a member of the Entra admin group",
        ),
        (
            "Principal 'asa-x' could not be found or this principal type is not supported. (33130)",
            "exact name",
        ),
        (
            "Cannot open server requested by the login. Client with IP address '1.2.3.4' is not "
            "allowed to access the server. (40615)",
            "sqlFirewallIpRanges",
        ),  # fmt: skip
        ("User does not have permission to perform this action.", "lacks permission"),
    ],
)
def test_errors_name_the_step_and_what_to_do(driver_error, expected):
    db = FakeDatabase(fail_with=RuntimeError(driver_error))
    with pytest.raises(sb.SqlBootstrapError) as info:
        sb.run_steps(db, script.bootstrap_steps(JOB, CLUSTER), "database sensors on srv")
    message = str(info.value)
    assert "step 'create table' on database sensors on srv failed" in message
    assert expected in message
    assert driver_error.split("]")[-1][:30] in message  # the driver's own words are kept


# --- the provider ---------------------------------------------------------------------------


def test_create_applies_the_script_and_outputs_its_hash(fake_db):
    result = sb.SqlBootstrapProvider().create(_props())
    assert result.id == "sql-dev.database.windows.net/sensors"
    assert result.outs["scriptHash"] == script.script_hash(JOB, CLUSTER)
    assert fake_db.users == {JOB, CLUSTER}
    assert fake_db.closed, "the connection was left open"
    assert fake_db.opened == [("sql-dev.database.windows.net", "sensors")]


def test_update_with_a_new_cluster_identity_retires_the_old_user(fake_db):
    provider = sb.SqlBootstrapProvider()
    olds = provider.create(_props()).outs
    news = _props(cluster="id-cluster-new")

    assert provider.diff("id", olds, news).changes
    outs = provider.update("id", olds, news).outs

    assert fake_db.users == {JOB, "id-cluster-new"}
    assert CLUSTER not in fake_db.grants
    assert outs["scriptHash"] == script.script_hash(JOB, "id-cluster-new")


def test_diff_is_quiet_when_nothing_changed_and_notices_a_new_script(fake_db):
    provider = sb.SqlBootstrapProvider()
    olds = provider.create(_props()).outs
    assert not provider.diff("id", olds, _props()).changes
    stale = {**olds, "scriptHash": "applied-by-an-older-version"}
    assert provider.diff("id", stale, _props()).changes


def test_delete_keeps_the_data(fake_db):
    sb.SqlBootstrapProvider().delete("id", _props())
    assert fake_db.executed == [] and fake_db.opened == []


def test_check_reports_bad_inputs_and_waits_for_unknowns():
    provider = sb.SqlBootstrapProvider()
    bad = {**_props(job=""), "serverFqdn": "not a host;x=1"}
    failures = {f.property: f.reason for f in provider.check({}, bad).failures}
    assert set(failures) == {"jobIdentityName", "serverFqdn"}
    assert "non-empty" in failures["jobIdentityName"]
    unknown = {**_props(), "clusterIdentityName": sb.UNKNOWN}
    assert provider.check({}, unknown).failures == []


# --- the real connection code, with the driver and the credential faked --------------------


class FakeToken:
    token = "eyJ.fake.jwt"


class FakeCredential:
    def __init__(self):
        self.scopes: list[str] = []
        self.closed = False

    def get_token(self, scope):
        self.scopes.append(scope)
        return FakeToken()

    def close(self):
        self.closed = True


@pytest.fixture
def fake_driver(monkeypatch):
    calls: list[dict] = []
    outcomes: list = []

    def connect(conn_str, autocommit=False, attrs_before=None, timeout=0):
        calls.append(
            {
                "conn_str": conn_str,
                "autocommit": autocommit,
                "attrs": attrs_before,
                "timeout": timeout,
            }
        )
        outcome = outcomes.pop(0) if outcomes else "connection"
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    module = types.SimpleNamespace(connect=connect)
    monkeypatch.setitem(sys.modules, "mssql_python", module)
    credential = FakeCredential()
    monkeypatch.setattr(sb, "default_credential", lambda: credential)
    return calls, outcomes, credential


def test_connects_with_the_deployers_entra_token(fake_driver):
    calls, _, credential = fake_driver
    assert sb.open_connection("sql-dev.database.windows.net", "sensors") == "connection"
    (call,) = calls
    assert credential.scopes == ["https://database.windows.net/.default"]
    raw = "eyJ.fake.jwt".encode("utf-16-le")
    assert call["attrs"] == {1256: struct.pack("<I", len(raw)) + raw}
    assert call["autocommit"] is True
    assert call["conn_str"].startswith("Server=tcp:sql-dev.database.windows.net,1433;")
    assert "Database={sensors};" in call["conn_str"] and "Encrypt=yes;" in call["conn_str"]
    for secret_word in ("PWD", "Password", "UID", "eyJ"):
        assert secret_word not in call["conn_str"]
    assert credential.closed


def test_waking_database_is_retried_with_backoff(fake_driver):
    calls, outcomes, _ = fake_driver
    outcomes += [RuntimeError("Database 'sensors' is not currently available. (40613)")] * 2
    waits: list[float] = []
    assert sb.open_connection("srv.example", "sensors", sleep=waits.append) == "connection"
    assert len(calls) == 3
    assert waits == [sb.CONNECT_BASE_DELAY, sb.CONNECT_BASE_DELAY * 2]


def test_login_failure_is_not_retried_and_explained(fake_driver):
    calls, outcomes, _ = fake_driver
    outcomes.append(RuntimeError("Login failed for user '<token-identified principal>'."))
    with pytest.raises(sb.SqlBootstrapError, match="Entra admin") as info:
        sb.open_connection("srv.example", "sensors", sleep=lambda _: None)
    assert len(calls) == 1
    assert "connecting to database sensors on srv.example failed" in str(info.value)


def test_credential_failure_says_how_to_sign_in(fake_driver, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError

    class NoCredential(FakeCredential):
        def get_token(self, scope):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.setattr(sb, "default_credential", NoCredential)
    with pytest.raises(Exception, match="az login"):
        sb.open_connection("srv.example", "sensors")


def test_database_name_is_brace_quoted_in_the_connection_string():
    assert "Database={we}}ird;x=1};" in sb.connection_string("srv.example", "we}ird;x=1")
    with pytest.raises(sb.SqlBootstrapError, match="serverFqdn"):
        sb.connection_string("srv;Authentication=x", "db")


# --- the component under Pulumi mocks -------------------------------------------------------


@pulumi.runtime.test
def test_component_wraps_one_dynamic_resource_named_from_it(mocks):
    component = sb_component.SqlBootstrap(
        "sql-bootstrap",
        sb_component.SqlBootstrapArgs(
            server_fqdn="sql-dev.database.windows.net",
            database="sensors",
            job_identity_name=JOB,
            cluster_identity_name=CLUSTER,
        ),
    )

    def check(_):
        (child,) = [r for r in mocks.resources if r.typ.startswith("pulumi-python:dynamic")]
        assert child.typ == "pulumi-python:dynamic/batchscore:SqlBootstrap", child.typ
        assert child.name == "sql-bootstrap-tsql"
        inputs = dict(child.inputs)
        assert {k: inputs[k] for k in sb.INPUT_KEYS} == _props()
        serialized = " ".join(str(v) for k, v in inputs.items() if k != "__provider")
        for word in ("token", "password", "secret"):
            assert word not in serialized.lower(), f"{child.name} input mentions {word}"

    return component.script.urn.apply(check)


@pulumi.runtime.test
def test_component_type_token_and_parenting(mocks):
    component = sb_component.SqlBootstrap(
        "boot",
        sb_component.SqlBootstrapArgs(
            server_fqdn="srv.example", database="db", job_identity_name=JOB,
            cluster_identity_name=CLUSTER,
        ),
    )  # fmt: skip

    def check(urns):
        component_urn, child_urn = urns
        assert component_urn.endswith("batchscore:index:SqlBootstrap::boot"), component_urn
        # A child's URN type chain starts with its parent's type.
        assert child_urn.endswith(
            "batchscore:index:SqlBootstrap$pulumi-python:dynamic/batchscore:SqlBootstrap::boot-tsql"
        ), child_urn

    return pulumi.Output.all(component.urn, component.script.urn).apply(check)


def test_provider_survives_the_trip_to_the_provider_process():
    """Pulumi pickles the provider with dill; the provider host must rebuild it by import."""
    import base64
    import subprocess
    from pathlib import Path

    from pulumi.dynamic.dynamic import serialize_provider

    blob = serialize_provider(sb.SqlBootstrapProvider())
    code = (
        "import base64, sys, dill; "
        "p = dill.loads(base64.b64decode(sys.stdin.read())); "
        "print(type(p).__module__, type(p).__name__, callable(p.create))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=blob,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["components.sql_bootstrap", "SqlBootstrapProvider", "True"]
    assert base64.b64decode(blob).count(b"DefaultAzureCredential") == 0
