"""StreamProcessing: the Stream Analytics job that turns readings into windowed rows of
dbo.SensorReadings, reading Event Hubs and writing SQL as its own managed identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import streamanalytics

from components.providers.stream_job import stop_before_update_hook
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
    exposed for them.

    Day two: Azure refuses to update a running job, its input or its output
    (pulumi-azure-native#785), so all three carry a `before_update` hook that stops the job
    (:func:`components.providers.stream_job.stop_before_update_hook`). `config_hash` is the
    hash of every value the three are declared with (:meth:`definition`), so any update of
    them changes it, and the job-start step, which restarts the job on a new hash, runs after
    them: no update leaves the job stopped.
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
        self.input_name = INPUT_NAME
        self.output_name = OUTPUT_NAME
        self.table_name = SQL_TABLE
        self.query = render_query(
            window_minutes=args.window_minutes,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            timestamp_field=TIMESTAMP_FIELD,
        )
        definition = self.definition(args, self.query)
        # An update of the job, its input or its output stops the job first (class docstring).
        self.stop_hook = stop_before_update_hook(f"{name}-stop-job-before-update")
        stop_first = pulumi.ResourceHookBinding(before_update=[self.stop_hook])

        self.job = self._job(name, args, definition["job"], stop_first)
        self.job_name = self.job.name
        self.job_id = self.job.id
        self.principal_id = self.job.identity.apply(lambda i: i.principal_id if i else None)
        self.client_id = SystemIdentity(
            f"{name}-job-identity", self.job.id, self.principal_id, child_options(self)
        ).clientId

        self.input = self._event_hub_input(name, args, definition["input"], stop_first)
        self.output = self._sql_output(name, args, definition["output"], stop_first)
        self.config_hash = pulumi.Output.from_input(definition).apply(stable_hash)
        send_to_log_analytics(
            f"{name}-job-diagnostics",
            resource_id=self.job.id,
            workspace_id=args.log_analytics_workspace_id,
            parent=self,
        )
        self.register_outputs(
            {"jobName": self.job_name, "jobId": self.job_id, "principalId": self.principal_id}
        )

    def _job(
        self,
        name: str,
        args: StreamProcessingArgs,
        job: dict[str, Any],
        stop_first: pulumi.ResourceHookBinding,
    ) -> streamanalytics.StreamingJob:
        """The job itself, declared from its part of :meth:`definition`."""
        place = args.placement
        return streamanalytics.StreamingJob(
            f"{name}-job",
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=streamanalytics.SkuArgs(name=job["sku"]),
            identity=streamanalytics.IdentityArgs(type=job["identity"]),
            transformation=streamanalytics.TransformationArgs(**job["transformation"]),
            **{k: v for k, v in job.items() if k not in ("sku", "identity", "transformation")},
            opts=child_options(self, hooks=stop_first),
        )

    def _event_hub_input(
        self,
        name: str,
        args: StreamProcessingArgs,
        source: dict[str, Any],
        stop_first: pulumi.ResourceHookBinding,
    ) -> streamanalytics.Input:
        """The hub as the job's stream input, read as the job's identity, which gets Azure
        Event Hubs Data Receiver on the hub first: the input never exists without its role."""
        receiver = assign_role(
            f"{name}-eventhub-receiver",
            role="Azure Event Hubs Data Receiver",
            principal_id=self.principal_id,
            scope=args.event_hub_id,
            subscription_id=args.subscription_id,
            parent=self,
        )
        return streamanalytics.Input(
            f"{name}-input",
            input_name=source["name"],
            job_name=self.job.name,
            resource_group_name=args.placement.resource_group_name,
            properties=streamanalytics.StreamInputPropertiesArgs(
                type=source["type"],
                datasource=streamanalytics.EventHubV2StreamInputDataSourceArgs(
                    **source["datasource"]
                ),
                serialization=streamanalytics.JsonSerializationArgs(**source["serialization"]),
            ),
            opts=child_options(self, depends_on=[receiver], hooks=stop_first),
        )

    def _sql_output(
        self,
        name: str,
        args: StreamProcessingArgs,
        sink: dict[str, Any],
        stop_first: pulumi.ResourceHookBinding,
    ) -> streamanalytics.Output:
        """dbo.SensorReadings as the job's output, written as the job's identity (its
        contained database user comes from the post-deploy SQL bootstrap)."""
        return streamanalytics.Output(
            f"{name}-output",
            output_name=sink["name"],
            job_name=self.job.name,
            resource_group_name=args.placement.resource_group_name,
            datasource=streamanalytics.AzureSqlDatabaseOutputDataSourceArgs(**sink["datasource"]),
            opts=child_options(self, hooks=stop_first),
        )

    @staticmethod
    def definition(args: StreamProcessingArgs, query: str) -> dict[str, Any]:
        """Every value the job, its input and its output are declared with (arguments of the
        SDK's classes, snake_case), the one source of both the resources and `config_hash`."""
        return {
            "job": {
                "sku": "Standard",
                "identity": "SystemAssigned",
                "job_type": "Cloud",
                "compatibility_level": "1.2",
                "events_out_of_order_policy": args.events_out_of_order_policy,
                "events_out_of_order_max_delay_in_seconds": (
                    args.events_out_of_order_max_delay_seconds
                ),
                "events_late_arrival_max_delay_in_seconds": (
                    args.events_late_arrival_max_delay_seconds
                ),
                "output_error_policy": args.output_error_policy,
                "data_locale": "en-US",
                "content_storage_policy": "SystemAccount",
                "transformation": {
                    "name": "aggregate-readings",
                    "query": query,
                    "streaming_units": args.streaming_units,
                },
                "tags": dict(args.placement.tags),
            },
            "input": {
                "name": INPUT_NAME,
                "type": "Stream",
                "datasource": {
                    "type": "Microsoft.EventHub/EventHub",
                    "authentication_mode": "Msi",
                    "service_bus_namespace": args.event_hubs_namespace_name,
                    "event_hub_name": args.event_hub_name,
                    "consumer_group_name": args.consumer_group_name,
                },
                "serialization": {"type": "Json", "encoding": "UTF8"},
            },
            "output": {
                "name": OUTPUT_NAME,
                "datasource": {
                    "type": "Microsoft.Sql/Server/Database",
                    "authentication_mode": "Msi",
                    "server": args.sql_server_fqdn,
                    "database": args.sql_database_name,
                    "table": SQL_TABLE,
                    "max_writer_count": 1,
                    "max_batch_count": 10000,
                },
            },
        }
