"""The post-deploy T-SQL that `make plan` renders per stack: current, valid T-SQL, users with
their client ids as SIDs, in order and idempotent through the fake database."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from components.offline import post_deploy
from components.offline.mocks import OfflineMocks
from components.offline.plan import REFRESH_HINT, plan_in_subprocess
from components.offline.plan_view import PlanView
from components.providers.sql_bootstrap_script import sid_literal
from tests.components.fake_sql import FakeDatabase
from tests.components.tsql_parser import parse

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
STACKS = ("dev", "prod")


@pytest.fixture(scope="module", params=STACKS)
def rendered(request) -> tuple[PlanView, str]:
    plan = plan_in_subprocess(request.param)
    return PlanView(plan), post_deploy.render(plan)


def batches(sql: str) -> list[str]:
    """The batches between `GO` lines, without comment lines: what sqlcmd sends one by one."""
    parts = re.split(r"^GO$", sql, flags=re.M)
    cleaned = [
        "\n".join(line for line in part.strip().splitlines() if not line.startswith("--"))
        for part in parts
    ]
    return [c for c in cleaned if c]


def test_the_snapshot_is_current(rendered) -> None:
    plan, sql = rendered
    path = SNAPSHOTS / f"post-deploy-{plan.stack}.sql"
    hint = REFRESH_HINT.format(stack=plan.stack)
    assert path.exists(), f"{path.name} is missing: run `{hint}`"
    assert path.read_text(encoding="utf-8") == sql, f"the post-deploy SQL changed: run `{hint}`"


def test_it_parses_as_tsql(rendered) -> None:
    _, sql = rendered
    tree, errors = parse(sql)
    assert errors == []
    kinds = Counter(
        s.get_type() for s in tree.recursive_crawl_all() if s.get_type().endswith("_statement")
    )
    assert kinds["go_statement"] == len(batches(sql))
    assert kinds["create_table_statement"] == kinds["create_index_statement"] == 1
    assert kinds["create_user_statement"] == kinds["grant_statement"] == 2
    assert kinds["if_then_statement"] == 7, "every create, alter and drop sits under its guard"


def test_the_parser_refuses_what_sql_server_would(rendered) -> None:
    """The check can fail: a wrong principal type or a missing GO-separated keyword is caught."""
    _, sql = rendered
    assert parse(sql.replace("TYPE = E", "TYPE = Q", 1))[1]
    assert parse(sql.replace("IF NOT EXISTS (SELECT 1", "IF NOT EXISTS (SELEC 1", 1))[1]


def test_users_are_the_identities_with_their_client_ids_as_sids(rendered) -> None:
    plan, sql = rendered
    mocks = OfflineMocks("batchscore", plan.stack)
    job = plan.one("azure-native:streamanalytics:StreamingJob")
    identity = plan.one("azure-native:managedidentity:UserAssignedIdentity")
    expected = {
        job.id.rsplit("/", 1)[1]: sid_literal(mocks._guid(job.id, "client")),
        identity.id.rsplit("/", 1)[1]: sid_literal(
            mocks._guid(
                "azure-native:managedidentity:UserAssignedIdentity", identity.name, "client"
            )
        ),
    }
    created = dict(
        re.findall(r"CREATE USER \[([^\]]+)\] WITH SID = (0x[0-9A-F]{32}), TYPE = E;", sql)
    )
    assert created == expected
    assert "FROM EXTERNAL PROVIDER" not in sql


def test_it_runs_in_order_through_the_fake_connection_and_again_changes_nothing(rendered) -> None:
    plan, sql = rendered
    db = FakeDatabase()
    cursor = db.cursor()
    for batch in batches(sql):
        cursor.execute(batch)
    job = plan.one("azure-native:streamanalytics:StreamingJob").id.rsplit("/", 1)[1]
    assert db.tables == {"dbo.SensorReadings"} and db.indexes == {"IX_SensorReadings_TS"}
    assert db.grants[job] == {"SELECT ON dbo.SensorReadings", "INSERT ON dbo.SensorReadings"}
    state = db.state()
    for batch in batches(sql):
        cursor.execute(batch)
    assert db.state() == state, "a second run changed the database"


def test_every_create_alter_and_drop_is_guarded(rendered) -> None:
    _, sql = rendered
    for batch in batches(sql):
        if re.search(r"\b(CREATE|ALTER|DROP)\b", batch):
            assert batch.startswith(("IF OBJECT_ID(", "IF NOT EXISTS (", "IF EXISTS (")), batch
