"""Diagnostic settings: every service sends its logs and metrics to Log Analytics."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import monitor

from components.shared.placement import child_options

SETTING_NAME = "to-log-analytics"


def send_to_log_analytics(
    name: str,
    *,
    resource_id: pulumi.Input[str],
    workspace_id: pulumi.Input[str],
    parent: pulumi.Resource,
    logs: bool = True,
    metric_category: str = "AllMetrics",
) -> monitor.DiagnosticSetting:
    """All logs (`categoryGroup: allLogs`) and all metrics of one resource to the workspace.

    `logs=False` for resources that expose metrics only (a storage account itself; its
    blob service has the logs). Storage names its metric category `Transaction` instead
    of `AllMetrics`.
    """
    return monitor.DiagnosticSetting(
        name,
        name=SETTING_NAME,
        resource_uri=resource_id,
        workspace_id=workspace_id,
        logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)]
        if logs
        else None,
        metrics=[monitor.DiagnosticsMetricSettingsArgs(category=metric_category, enabled=True)],
        opts=child_options(parent),
    )
