"""Every alert and workbook query parses and binds, with Microsoft's own Kusto parser, against
the tables and column types the services' diagnostic categories produce
(components/shared/log_tables.py, which cites Microsoft's table reference); reads the run
summary only through fields the publish step sends (scoring/telemetry.py); and each table's
writer really sends it to the stack's workspace.

The alert rules skip the service's own query check at creation (``skipQueryValidation``:
a new workspace lacks the tables until their first row, Azure/bicep#11378), so this is the
check that a wrong column or a misused type cannot reach Azure."""

from __future__ import annotations

import re

import pytest

from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView
from components.shared.log_tables import DYNAMIC_COLUMNS, LOG_TABLES
from components.shared.monitoring_queries import ALL_QUERIES, Query, QueryScope
from scoring import telemetry
from tests.components import kusto

SCOPE = QueryScope(
    ml_workspace_id="/subscriptions/s/resourceGroups/rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/mlw",
    app_insights_id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/components/ai",
    stream_job_id="/subscriptions/s/resourceGroups/rg/providers/"
    "Microsoft.StreamAnalytics/streamingjobs/job",
    cluster_name="cpu-cluster",
)
#: the keys a query may read inside each dynamic column of the run summary's event
DYNAMIC_KEYS = {
    "Properties": set(telemetry.PROPERTIES) | set(telemetry.TRAINING_PROPERTIES),
    "Measurements": set(telemetry.MEASUREMENTS) | set(telemetry.TRAINING_MEASUREMENTS),
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MEMBER = re.compile(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)")


def render(query: Query) -> str:
    return query.render(
        SCOPE, failed_pairs_percent=5, rejected_percent=20, drifted_pairs_percent=20
    )


def summary_field_problems(text: str, table: str) -> list[str]:
    """Members read inside a dynamic column that the run summary does not send (the parser
    cannot know what a dynamic value holds: the contract lives in scoring/telemetry.py)."""
    found = []
    for column, key in _MEMBER.findall(_STRING.sub('""', text)):
        if (table, column) in DYNAMIC_COLUMNS and key not in DYNAMIC_KEYS[column]:
            found.append(f"{column}.{key}: not a field of the run summary's event")
    return found


@pytest.fixture(scope="module")
def diagnostics() -> dict[str, list[kusto.Diagnostic]]:
    """Kusto.Language's diagnostics of every query, plus the probes below, in one Node run."""
    kusto.require_parser()
    queries = {q.name: render(q) for q in ALL_QUERIES}
    queries.update(PROBES)
    return kusto.analyze(LOG_TABLES.values(), queries)


#: queries with one known mistake each: the parser must name it (the check can fail)
PROBES = {
    "probe-wrong-column": 'AmlRunStatusChangedEvent\n| where Staus == "Failed"',
    "probe-wrong-table": "AppEvent\n| take 1",
    "probe-sum-of-text": "AmlRunStatusChangedEvent\n| summarize sum(Status)",
    "probe-column-lost-by-summarize": (
        "AzureMetrics\n| summarize Total = sum(Total) by bin(TimeGenerated, 5m)\n"
        '| where MetricName == "InputEvents"'
    ),
    "probe-syntax": "AppEvents\n| where",
}


@pytest.mark.parametrize("query", ALL_QUERIES, ids=[q.name for q in ALL_QUERIES])
def test_the_query_parses_and_binds_against_its_table(query: Query, diagnostics) -> None:
    text = render(query)
    assert query.table in LOG_TABLES, f"{query.name}: {query.table} is not in log_tables.py"
    assert text.split("\n", 1)[0].strip() == query.table, f"{query.name} reads another table"
    assert "$" not in text, f"{query.name}: a placeholder was left unfilled"
    found = [str(d) for d in diagnostics[query.name]]
    assert found == [], f"{query.name}:\n{text}\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("probe", "code", "names"),
    [
        ("probe-wrong-column", "KS142", "Staus"),
        ("probe-wrong-table", "KS204", "AppEvent"),
        ("probe-sum-of-text", "KS", "sum"),
        ("probe-column-lost-by-summarize", "KS142", "MetricName"),
        ("probe-syntax", "KS", ""),
    ],
)
def test_the_parser_names_a_wrong_column_table_type_or_syntax(
    probe: str, code: str, names: str, diagnostics
) -> None:
    found = [d for d in diagnostics[probe] if d.severity == "Error"]
    assert found, f"{probe}: Kusto.Language found nothing wrong"
    assert any(d.code.startswith(code) and names in d.message for d in found), found


@pytest.mark.parametrize("query", ALL_QUERIES, ids=[q.name for q in ALL_QUERIES])
def test_the_query_reads_only_fields_the_run_summary_sends(query: Query) -> None:
    assert summary_field_problems(render(query), query.table) == []


def test_the_summary_field_check_catches_a_misspelt_field() -> None:
    text = "AppEvents\n| where todouble(Measurements.pair_failed) > 0"
    assert summary_field_problems(text, "AppEvents") == [
        "Measurements.pair_failed: not a field of the run summary's event"
    ]
    assert summary_field_problems('AppEvents\n| where Name == "a.b"', "AppEvents") == []


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
