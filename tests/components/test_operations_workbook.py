"""The operations workbook, dev and prod: runs per day, failed pairs and anomalies per window,
the stream's input rate, over the stack's Log Analytics workspace, under a stable GUID name."""

from __future__ import annotations

import json
import uuid

import pytest

from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView
from components.operations_workbook import PANELS, workbook_name
from components.shared import monitoring_queries as q

WORKBOOK = "azure-native:applicationinsights:Workbook"


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request) -> PlanView:
    return PlanView(plan_in_subprocess(request.param))


def test_the_workbook_shows_the_runs_and_the_stream_from_the_stacks_workspace(plan) -> None:
    workbook = plan.one(WORKBOOK)
    workspace = plan.one("azure-native:operationalinsights:Workspace").id
    assert workbook.get("sourceId") == workspace
    assert (workbook.get("kind"), workbook.get("category")) == ("shared", "workbook")
    data = json.loads(workbook.get("serializedData"))
    assert data["version"] == "Notebook/1.0" and data["fallbackResourceIds"] == [workspace]
    queries = {item["name"]: item["content"] for item in data["items"] if item["type"] == 3}
    wanted = {
        q.RUNS_PER_DAY,
        q.FAILED_PAIRS_PER_WINDOW,
        q.ANOMALIES_PER_WINDOW,
        q.STREAM_INPUT_RATE,
    }
    assert {query.name for query in wanted} <= set(queries)
    for content in queries.values():
        assert content["version"] == "KqlItem/1.0" and content["queryType"] == 0
        assert content["resourceType"] == "microsoft.operationalinsights/workspaces"
    job = plan.one("azure-native:streamanalytics:StreamingJob").id
    assert f'_ResourceId =~ "{job}"' in queries["stream-input-rate"]["query"]
    assert len(queries) == len(PANELS)


def test_the_name_is_a_guid_of_project_and_stack() -> None:
    dev, prod = workbook_name("batchscore", "dev"), workbook_name("batchscore", "prod")
    assert uuid.UUID(dev) and dev != prod
    assert dev == workbook_name("batchscore", "dev"), "the same on every deployment"
    assert PlanView(plan_in_subprocess("dev")).one(WORKBOOK).get("resourceName") == dev
