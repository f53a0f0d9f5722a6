"""The SQL bootstrap: its T-SQL (idempotent, least privilege, safely quoted), its order and
re-runs against a fake database, its connection code and errors, and the component."""

from __future__ import annotations

import re
import struct
import sys
import types

import pulumi
import pytest

from components import sql_bootstrap as sb_component
from components.providers import sql_bootstrap as sb
from components.providers import sql_bootstrap_script as script
from tests.components.fake_sql import FakeDatabase

JOB = "asa-batchscore-dev"
CLUSTER = "id-cluster-dev"
JOB_CLIENT_ID = "00112233-4455-6677-8899-aabbccddeeff"
CLUSTER_CLIENT_ID = "8c4f7b1e-2d3a-4e5f-9a6b-7c8d9e0f1a2b"
# What SQL Server answers to SELECT CAST(CAST('<id>' AS uniqueidentifier) AS varbinary(16)):
# the first three groups byte-reversed, the last two as written (the uniqueidentifier layout).
JOB_SID = "0x33221100554477668899AABBCCDDEEFF"
CLUSTER_SID = "0x1E7B4F8C3A2D5F4E9A6B7C8D9E0F1A2B"


def users(job=JOB, cluster=CLUSTER, job_client=JOB_CLIENT_ID, cluster_client=CLUSTER_CLIENT_ID):
    return script.DatabaseUser(job, job_client), script.DatabaseUser(cluster, cluster_client)


def steps_for(retired_names=(), **user_changes):
    return script.bootstrap_steps(*users(**user_changes), retired_names=retired_names)


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


def _props(job=JOB, cluster=CLUSTER, job_client=JOB_CLIENT_ID, cluster_client=CLUSTER_CLIENT_ID):
    return {
        "serverFqdn": "sql-dev.database.windows.net",
        "database": "sensors",
        "jobIdentityName": job,
        "jobIdentityClientId": job_client,
        "clusterIdentityName": cluster,
        "clusterIdentityClientId": cluster_client,
    }


# --- the script as text -------------------------------------------------------------------


def test_every_create_alter_and_drop_is_guarded():
    for step in steps_for(retired_names=["old-identity"]):
        body = step.sql.upper()
        if re.search(r"\b(CREATE|ALTER|DROP)\b", body):
            assert body.startswith(("IF OBJECT_ID(", "IF NOT EXISTS (", "IF EXISTS (")), (
                f"step '{step.name}' is not guarded: {step.sql}"
            )


def test_table_matches_the_column_contract():
    create = steps_for()[0].sql
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
    grants = [s.sql for s in steps_for() if s.sql.startswith("GRANT")]
    assert grants == [
        f"GRANT SELECT, INSERT ON OBJECT::dbo.SensorReadings TO [{JOB}];",
        f"GRANT SELECT ON OBJECT::dbo.SensorReadings TO [{CLUSTER}];",
    ]
    text = script.script_text(steps_for()).upper()
    for broad in ("ALTER ROLE", "DB_OWNER", "DB_DATAWRITER", "CONTROL", "ON DATABASE", "SCHEMA::"):
        assert broad not in text, f"script grants something broad: {broad}"


@pytest.mark.parametrize(
    "name",
    ["job]; DROP TABLE dbo.SensorReadings; --", "o'brien", "name with ]] two", "ünïcode-jöb"],
)
def test_hostile_names_stay_one_identifier_and_one_literal(name):
    db = FakeDatabase()
    sb.run_steps(db, steps_for(job=name), "test")
    assert db.users == {name: JOB_SID, CLUSTER: CLUSTER_SID}
    assert db.grants[name] == {"SELECT ON dbo.SensorReadings", "INSERT ON dbo.SensorReadings"}
    assert db.tables == {"dbo.SensorReadings"}


def test_quoting_doubles_the_closing_characters():
    assert script.quote_identifier("a]b") == "[a]]b]"
    assert script.quote_literal("a'b") == "N'a''b'"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"job": ""}, "jobIdentityName must be a non-empty name"),
        ({"cluster": "   "}, "clusterIdentityName must be a non-empty name"),
        ({"cluster": "x" * 129}, "clusterIdentityName 'xxx"),
        ({"job": "bad\nname"}, "jobIdentityName 'bad\\nname' contains control characters"),
        ({"job_client": "asa-dev"}, "jobIdentityClientId must be a client id (a GUID)"),
        ({"cluster_client": None}, "clusterIdentityClientId must be a client id (a GUID)"),
    ],
)
def test_bad_users_are_refused_naming_the_input(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sb.users_of(_props(**changes))


# --- users from client ids, without Microsoft Graph -----------------------------------------


def test_sid_is_the_client_id_in_sql_servers_uniqueidentifier_byte_order():
    assert script.sid_literal(JOB_CLIENT_ID) == JOB_SID
    assert script.sid_literal(CLUSTER_CLIENT_ID) == CLUSTER_SID
    assert script.sid_literal(JOB_CLIENT_ID.upper()) == JOB_SID


def test_users_are_created_with_their_sid_and_type_e_never_from_the_directory():
    text = script.script_text(steps_for())
    assert "FROM EXTERNAL PROVIDER" not in text
    creates = re.findall(r"CREATE USER (\[[^\]]+\]) WITH SID = (0x[0-9A-F]{32}), TYPE = E;", text)
    assert creates == [(f"[{JOB}]", JOB_SID), (f"[{CLUSTER}]", CLUSTER_SID)]


def test_a_user_left_by_a_recreated_identity_of_the_same_name_is_replaced():
    db = FakeDatabase()
    sb.run_steps(db, steps_for(), "test")
    new_client = "99999999-8888-4777-8666-555544443333"
    sb.run_steps(db, steps_for(job_client=new_client), "test")
    assert db.users[JOB] == script.sid_literal(new_client)
    assert db.grants[JOB] == {"SELECT ON dbo.SensorReadings", "INSERT ON dbo.SensorReadings"}
    assert db.users[CLUSTER] == CLUSTER_SID


# --- running it -----------------------------------------------------------------------------


def test_runs_table_then_users_then_grants():
    db = FakeDatabase()
    sb.run_steps(db, steps_for(), "test")

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
    steps = steps_for()
    sb.run_steps(db, steps, "test")
    state = db.state()
    sb.run_steps(db, steps, "test")
    assert db.state() == state


def test_same_identity_for_job_and_cluster_is_created_once():
    steps = steps_for(cluster=JOB, cluster_client=JOB_CLIENT_ID)
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
            "User, group, or role 'asa-x' already exists in the current database. (15023)",
            "DROP USER [name]",
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
        sb.run_steps(db, steps_for(), "database sensors on srv")
    message = str(info.value)
    assert "step 'create table' on database sensors on srv failed" in message
    assert expected in message
    assert driver_error.split("]")[-1][:30] in message  # the driver's own words are kept


# --- the provider ---------------------------------------------------------------------------


def test_create_applies_the_script_and_outputs_its_hash(fake_db):
    result = sb.SqlBootstrapProvider().create(_props())
    assert result.id == "sql-dev.database.windows.net/sensors"
    assert result.outs["scriptHash"] == script.script_hash(*users())
    assert fake_db.users == {JOB: JOB_SID, CLUSTER: CLUSTER_SID}
    assert fake_db.closed, "the connection was left open"
    assert fake_db.opened == [("sql-dev.database.windows.net", "sensors")]


def test_update_with_a_new_cluster_identity_retires_the_old_user(fake_db):
    provider = sb.SqlBootstrapProvider()
    olds = provider.create(_props()).outs
    new_client = "77777777-6666-4555-8444-333322221111"
    news = _props(cluster="id-cluster-new", cluster_client=new_client)

    assert provider.diff("id", olds, news).changes
    outs = provider.update("id", olds, news).outs

    assert fake_db.users == {JOB: JOB_SID, "id-cluster-new": script.sid_literal(new_client)}
    assert CLUSTER not in fake_db.grants
    assert outs["scriptHash"] == script.script_hash(
        *users(cluster="id-cluster-new", cluster_client=new_client)
    )


def test_a_renamed_identity_keeping_its_client_id_moves_its_user(fake_db):
    """The retired user goes first: a SID belongs to one user of the database at a time."""
    provider = sb.SqlBootstrapProvider()
    olds = provider.create(_props()).outs
    provider.update("id", olds, _props(cluster="id-cluster-renamed"))
    assert fake_db.users == {JOB: JOB_SID, "id-cluster-renamed": CLUSTER_SID}


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
    bad = {**_props(job="", cluster_client="id-cluster"), "serverFqdn": "not a host;x=1"}
    failures = {f.property: f.reason for f in provider.check({}, bad).failures}
    assert set(failures) == {"jobIdentityName", "clusterIdentityClientId", "serverFqdn"}
    assert "non-empty" in failures["jobIdentityName"]
    assert "a GUID" in failures["clusterIdentityClientId"]
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
            job_identity_client_id=JOB_CLIENT_ID,
            cluster_identity_name=CLUSTER,
            cluster_identity_client_id=CLUSTER_CLIENT_ID,
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
            job_identity_client_id=JOB_CLIENT_ID, cluster_identity_name=CLUSTER,
            cluster_identity_client_id=CLUSTER_CLIENT_ID,
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
