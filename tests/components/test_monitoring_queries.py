"""Every alert and workbook query names only tables and columns the services' diagnostic
categories produce (components/shared/log_tables.py, which cites Microsoft's table reference),
reads the run summary only through fields the publish step sends (scoring/telemetry.py), and
each table's writer really sends it to the stack's workspace."""

from __future__ import annotations

import re

import pytest

from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView
from components.shared.log_tables import DYNAMIC_COLUMNS, LOG_TABLES, LogTable
from components.shared.monitoring_queries import ALL_QUERIES, Query, QueryScope
from scoring import telemetry

SCOPE = QueryScope(
    ml_workspace_id="/subscriptions/s/resourceGroups/rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/mlw",
    app_insights_id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/components/ai",
    stream_job_id="/subscriptions/s/resourceGroups/rg/providers/"
    "Microsoft.StreamAnalytics/streamingjobs/job",
    cluster_name="cpu-cluster",
)
# The KQL operators, keywords and functions the queries use: anything else is a column.
KQL_WORDS = frozenset(
    "where project extend summarize by and or not order asc desc take isempty isnotempty "
    "tostring todouble todatetime dcount count sum bin arg_max".split()
)
#: the keys a query may read inside each dynamic column of the run summary's event
DYNAMIC_KEYS = {
    "Properties": set(telemetry.PROPERTIES),
    "Measurements": set(telemetry.MEASUREMENTS),
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_TOKEN = re.compile(r"(?<![\w.])\d[\w.]*|(\.)?([A-Za-z_]\w*)(\s*=(?![=~]))?")


def problems_of(text: str, table: LogTable) -> list[str]:
    """Every name in `text` that is neither KQL, a column of `table`, a name the query
    defines (`X = ...`) nor a summary field inside a dynamic column."""
    found: list[str] = []
    defined: set[str] = set()
    previous = None
    for match in _TOKEN.finditer(_STRING.sub('""', text)):
        member, name, assigns = match.groups()
        if name is None:  # a number or timespan literal (5m, 1d, 100.0)
            previous = None
            continue
        if member:
            if (table.name, previous) not in DYNAMIC_COLUMNS:
                found.append(f"{name}: a member of {previous}, which is not a dynamic column")
            elif name not in DYNAMIC_KEYS[previous]:
                found.append(f"{previous}.{name}: not a field of the run summary's event")
        elif assigns:
            defined.add(name)
        elif name not in KQL_WORDS and name not in defined and not table.has(name):
            if name != table.name:
                found.append(f"{name}: not a column of {table.name}")
        previous = name
    return found


def render(query: Query) -> str:
    return query.render(SCOPE, failed_pairs_percent=5, drifted_pairs_percent=20)


@pytest.mark.parametrize("query", ALL_QUERIES, ids=[q.name for q in ALL_QUERIES])
def test_the_query_reads_one_listed_table_and_only_its_columns(query: Query) -> None:
    text = render(query)
    assert query.table in LOG_TABLES, f"{query.name}: {query.table} is not in log_tables.py"
    assert text.split("\n", 1)[0].strip() == query.table, f"{query.name} reads another table"
    assert problems_of(text, LOG_TABLES[query.table]) == []
    assert "$" not in text, f"{query.name}: a placeholder was left unfilled"


def test_the_check_catches_a_wrong_column_a_wrong_field_and_a_member_of_a_plain_column() -> None:
    runs, events = LOG_TABLES["AmlRunStatusChangedEvent"], LOG_TABLES["AppEvents"]
    assert problems_of('AmlRunStatusChangedEvent\n| where Staus == "Failed"', runs) == [
        "Staus: not a column of AmlRunStatusChangedEvent"
    ]
    assert problems_of("AppEvents\n| where todouble(Measurements.pair_failed) > 0", events) == [
        "Measurements.pair_failed: not a field of the run summary's event"
    ]
    assert problems_of("AppEvents\n| where Name.length > 0", events) == [
        "length: a member of Name, which is not a dynamic column"
    ]
    defined = "AppEvents\n| extend Share = 1.0\n| where Share > 0.5 and ItemCount > 0"
    assert problems_of(defined, events) == []


def test_the_queries_are_filtered_to_this_stacks_resources() -> None:
    for query in ALL_QUERIES:
        text = render(query)
        assert any(f'"{value}"' in text for value in vars(SCOPE).values()), (
            f"{query.name} reads every resource of the workspace"
        )


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request) -> PlanView:
    return PlanView(plan_in_subprocess(request.param))


def test_every_table_read_is_written_to_the_stacks_workspace(plan: PlanView) -> None:
    workspace = plan.one("azure-native:operationalinsights:Workspace").id
    settings = {
        d.get("resourceUri"): d for d in plan.of_type("azure-native:monitor:DiagnosticSetting")
    }
    for table in {LOG_TABLES[q.table] for q in ALL_QUERIES}:
        writer = plan.one(table.written_by)
        if table.through == "workspace-based":
            assert writer.get("ingestionMode") == "LogAnalytics", table.name
            assert writer.get("workspaceResourceId") == workspace, table.name
            continue
        setting = settings.get(writer.id)
        assert setting and setting.get("workspaceId") == workspace, f"{table.name}: no setting"
        if table.through == "allLogs":
            assert {"categoryGroup": "allLogs", "enabled": True} in setting.get("logs"), table.name
        else:
            assert {"category": "AllMetrics", "enabled": True} in setting.get("metrics"), table.name
