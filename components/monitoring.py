"""Monitoring: the Log Analytics workspace every service sends its diagnostics to.

The design lists Log Analytics under the ML workspace; it is its own component here
because every other component needs its id for diagnostic settings, and the ML workspace
itself depends on Storage and the registry (which would make a cycle).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import operationalinsights

from components.shared.diagnostics import send_to_log_analytics
from components.shared.placement import Placement, child_options


@dataclass
class MonitoringArgs:
    placement: Placement
    retention_days: int
    protect: bool = False


class Monitoring(pulumi.ComponentResource):
    """Log Analytics workspace (PerGB2018, retention from config) with its own audit logs."""

    workspace_id: pulumi.Output[str]
    workspace_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:Monitoring", name, None, opts)
        place = args.placement
        self.workspace = operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.retention_days,
            tags=dict(place.tags),
            opts=child_options(self, protect=args.protect),
        )
        self.workspace_id = self.workspace.id
        self.workspace_name = self.workspace.name
        send_to_log_analytics(
            f"{name}-logs-diagnostics",
            resource_id=self.workspace.id,
            workspace_id=self.workspace.id,
            parent=self,
        )
        self.register_outputs(
            {"workspaceId": self.workspace_id, "workspaceName": self.workspace_name}
        )
