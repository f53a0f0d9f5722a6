"""Arguments of a StreamProcessing component for tests: plausible values, any one changeable."""

from __future__ import annotations

from components.offline import mocks
from components.shared.placement import Placement
from components.stream_processing import StreamProcessingArgs

PLACE = Placement("rg-unit", "westeurope", {"project": "batchscore", "environment": "unit"})
LOGS = (
    "/subscriptions/s/resourceGroups/rg-unit/providers/Microsoft.OperationalInsights/workspaces/l"
)


def stream_args(**changes) -> StreamProcessingArgs:
    values = dict(
        placement=PLACE,
        window_minutes=15,
        streaming_units=3,
        events_out_of_order_policy="Adjust",
        events_out_of_order_max_delay_seconds=5,
        events_late_arrival_max_delay_seconds=60,
        output_error_policy="Stop",
        event_hubs_namespace_name="evhns-x",
        event_hub_name="sensor-readings",
        event_hub_id="/hub-id",
        consumer_group_name="stream-analytics",
        sql_server_fqdn="sql-x.database.windows.net",
        sql_database_name="sensors",
        subscription_id=mocks.SUBSCRIPTION_ID,
        log_analytics_workspace_id=LOGS,
    )
    values.update(changes)
    return StreamProcessingArgs(**values)
