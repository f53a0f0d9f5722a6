"""StreamProcessing: the Stream Analytics job that turns readings into windowed rows of
dbo.SensorReadings, reading Event Hubs and writing SQL as its own managed identity."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import streamanalytics

from components.providers.system_identity import SystemIdentity
from components.shared.diagnostics import send_to_log_analytics
from components.shared.hashing import stable_hash
from components.shared.placement import Placement, child_options
from components.shared.roles import assign_role
from components.shared.stream_query import render_query

INPUT_NAME = "sensor-readings"
OUTPUT_NAME = "sensor-database"
SQL_TABLE = "SensorReadings"
# Field of each event that carries the reading's time (see scoring/eventhub_sink.py).
TIMESTAMP_FIELD = "EventTime"


@dataclass
class StreamProcessingArgs:
    placement: Placement
    window_minutes: int
    streaming_units: int
    events_out_of_order_policy: str
    events_out_of_order_max_delay_seconds: int
    events_late_arrival_max_delay_seconds: int
    output_error_policy: str
    event_hubs_namespace_name: pulumi.Input[str]
    event_hub_name: pulumi.Input[str]
    event_hub_id: pulumi.Input[str]
    consumer_group_name: pulumi.Input[str]
    sql_server_fqdn: pulumi.Input[str]
    sql_database_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    log_analytics_workspace_id: pulumi.Input[str]


class StreamProcessing(pulumi.ComponentResource):
    """The job (compat 1.2, system-assigned identity), its input, output and query.

    Deploying does not start the job: it must start after dbo.SensorReadings and the job's
    contained database user exist (the post-deploy steps), so `job_name`, `job_id`,
    `principal_id` and `client_id` (its identity's application id, the user's SID) are
    exposed for them. `config_hash` changes exactly when the query, the
    input or the output changes: the job-start step restarts the job on it.
    """

    job_name: pulumi.Output[str]
    job_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    client_id: pulumi.Output[str]
    query: str
    config_hash: pulumi.Output[str]

    def __init__(
        self, name: str, args: StreamProcessingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:StreamProcessing", name, None, opts)
        place = args.placement
        self.input_name = INPUT_NAME
        self.output_name = OUTPUT_NAME
        self.table_name = SQL_TABLE
        self.query = render_query(
            window_minutes=args.window_minutes,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            timestamp_field=TIMESTAMP_FIELD,
        )
        self.job = streamanalytics.StreamingJob(
            f"{name}-job",
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=streamanalytics.SkuArgs(name="Standard"),
            job_type="Cloud",
            compatibility_level="1.2",
            identity=streamanalytics.IdentityArgs(type="SystemAssigned"),
            events_out_of_order_policy=args.events_out_of_order_policy,
            events_out_of_order_max_delay_in_seconds=args.events_out_of_order_max_delay_seconds,
            events_late_arrival_max_delay_in_seconds=args.events_late_arrival_max_delay_seconds,
            output_error_policy=args.output_error_policy,
            data_locale="en-US",
            content_storage_policy="SystemAccount",
            transformation=streamanalytics.TransformationArgs(
                name="aggregate-readings",
                query=self.query,
                streaming_units=args.streaming_units,
            ),
            tags=dict(place.tags),
            opts=child_options(self),
        )
        self.job_name = self.job.name
        self.job_id = self.job.id
        self.principal_id = self.job.identity.apply(lambda i: i.principal_id if i else None)
        self.client_id = SystemIdentity(
            f"{name}-job-identity", self.job.id, self.principal_id, child_options(self)
        ).clientId

        receiver = assign_role(
            f"{name}-eventhub-receiver",
            role="Azure Event Hubs Data Receiver",
            principal_id=self.principal_id,
            scope=args.event_hub_id,
            subscription_id=args.subscription_id,
            parent=self,
        )
        self.input = streamanalytics.Input(
            f"{name}-input",
            input_name=INPUT_NAME,
            job_name=self.job.name,
            resource_group_name=place.resource_group_name,
            properties=streamanalytics.StreamInputPropertiesArgs(
                type="Stream",
                datasource=streamanalytics.EventHubV2StreamInputDataSourceArgs(
                    type="Microsoft.EventHub/EventHub",
                    authentication_mode="Msi",
                    service_bus_namespace=args.event_hubs_namespace_name,
                    event_hub_name=args.event_hub_name,
                    consumer_group_name=args.consumer_group_name,
                ),
                serialization=streamanalytics.JsonSerializationArgs(type="Json", encoding="UTF8"),
            ),
            opts=child_options(self, depends_on=[receiver]),
        )
        self.output = streamanalytics.Output(
            f"{name}-output",
            output_name=OUTPUT_NAME,
            job_name=self.job.name,
            resource_group_name=place.resource_group_name,
            datasource=streamanalytics.AzureSqlDatabaseOutputDataSourceArgs(
                type="Microsoft.Sql/Server/Database",
                authentication_mode="Msi",
                server=args.sql_server_fqdn,
                database=args.sql_database_name,
                table=SQL_TABLE,
                max_writer_count=1,
                max_batch_count=10000,
            ),
            opts=child_options(self),
        )
        self.config_hash = pulumi.Output.all(
            query=self.query,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            namespace=args.event_hubs_namespace_name,
            hub=args.event_hub_name,
            consumer_group=args.consumer_group_name,
            server=args.sql_server_fqdn,
            database=args.sql_database_name,
            table=SQL_TABLE,
        ).apply(stable_hash)
        send_to_log_analytics(
            f"{name}-job-diagnostics",
            resource_id=self.job.id,
            workspace_id=args.log_analytics_workspace_id,
            parent=self,
        )
        self.register_outputs(
            {"jobName": self.job_name, "jobId": self.job_id, "principalId": self.principal_id}
        )
