"""OperationsWorkbook: an Azure Monitor workbook of the scoring runs and the stream, over the
stack's Log Analytics workspace.

Panels (queries in :mod:`components.shared.monitoring_queries`): scoring runs per day by
outcome, failed pairs per window, anomalies per window, Stream Analytics input events per
5 minutes, and the latest runs. The serialized form is the workbook JSON the portal saves
(``Notebook/1.0``: markdown items of type 1, ``KqlItem/1.0`` query items of type 3 over
``microsoft.operationalinsights/workspaces``), the shape of Microsoft's own ARM samples for
``Microsoft.Insights/workbooks``. A workbook's name must be a GUID: it is derived from the
project and stack, so it stays the same on every deployment.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import applicationinsights

from components.shared import monitoring_queries as q
from components.shared.placement import Placement, child_options

_NAMESPACE = uuid.UUID("0d6f3f0e-6b0c-4a8e-9d52-3f2b8f6a9c41")
WEEK_MS = 7 * 24 * 3600 * 1000

#: (query, title, visualization) in the order they show
PANELS = (
    (q.RUNS_PER_DAY, "Scoring runs per day, by outcome", "barchart"),
    (q.FAILED_PAIRS_PER_WINDOW, "Failed (Device, Sensor) pairs per window", "timechart"),
    (q.ANOMALIES_PER_WINDOW, "Anomalies per window", "timechart"),
    (q.STREAM_INPUT_RATE, "Stream Analytics input events per 5 minutes", "timechart"),
    (q.LATEST_RUNS, "Latest scoring runs", "table"),
)


@dataclass
class OperationsWorkbookArgs:
    placement: Placement
    log_analytics_workspace_id: pulumi.Input[str]
    query_scope: pulumi.Output[q.QueryScope]  # the resources the panels look at


def workbook_name(project: str, stack: str) -> str:
    """The workbook's GUID name, the same for a stack on every run."""
    return str(uuid.uuid5(_NAMESPACE, f"{project}/{stack}/operations"))


def serialized_workbook(scope: q.QueryScope, workspace_id: str) -> str:
    """The workbook's JSON: a heading, then one query item per panel."""
    items: list[dict[str, object]] = [
        {
            "type": 1,
            "content": {
                "json": "## Batch scoring\nRuns, failed pairs and anomalies per window (from "
                "each run's summary), and the events the stream job reads. What each alert "
                "means: the README's *Monitoring and alerts* section."
            },
            "name": "heading",
        }
    ]
    for query, title, visualization in PANELS:
        items.append(
            {
                "type": 3,
                "content": {
                    "version": "KqlItem/1.0",
                    "query": query.render(scope),
                    "size": 0,
                    "title": title,
                    "timeContext": {"durationMs": WEEK_MS},
                    "queryType": 0,
                    "resourceType": "microsoft.operationalinsights/workspaces",
                    "visualization": visualization,
                },
                "name": query.name,
            }
        )
    return json.dumps(
        {
            "version": "Notebook/1.0",
            "items": items,
            "isLocked": False,
            "fallbackResourceIds": [workspace_id],
        },
        indent=1,
    )


class OperationsWorkbook(pulumi.ComponentResource):
    """The shared workbook ``Batch scoring (<stack>)`` in the stack's resource group."""

    workbook_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: OperationsWorkbookArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:OperationsWorkbook", name, None, opts)
        place = args.placement
        stack = pulumi.get_stack()
        data = pulumi.Output.all(args.query_scope, args.log_analytics_workspace_id).apply(
            lambda values: serialized_workbook(*values)
        )
        self.workbook = applicationinsights.Workbook(
            f"{name}-workbook",
            resource_name_=workbook_name(pulumi.get_project(), stack),
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind="shared",
            category="workbook",
            display_name=f"Batch scoring ({stack})",
            source_id=args.log_analytics_workspace_id,
            version="Notebook/1.0",
            serialized_data=data,
            tags=dict(place.tags),
            opts=child_options(self),
        )
        self.workbook_id = self.workbook.id
        self.register_outputs({"workbookId": self.workbook_id})
