"""StreamProcessing: the Stream Analytics job that turns readings into windowed rows of
dbo.SensorReadings, reading Event Hubs and writing SQL as its own managed identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import streamanalytics

from components.providers.stream_definition import (
    JOB_PATCHED_PROPERTIES,
    JOB_SETTINGS,
    StreamJobDefinitionResource,
)
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
# A dedicated cluster's smallest size (streaming units; multiples of 36 up to 216, API
# 2020-03-01); it is billed whether jobs run on it or not.
CLUSTER_CAPACITY = 36
# Managed private endpoint of the cluster -> the private-link sub-resource of its target.
CLUSTER_ENDPOINT_GROUPS = {"eventhubs": "namespace", "sql": "sqlServer"}


# Keys of the job's definition that the SDK takes as nested argument classes.
_NESTED = ("sku", "identity", "transformation", "cluster")


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
    # Private networking: the job runs on a dedicated cluster whose managed private endpoints
    # reach the namespace and the SQL server (see `_private_cluster`).
    network_isolation: bool = False
    event_hubs_namespace_id: pulumi.Input[str] | None = None
    sql_server_id: pulumi.Input[str] | None = None


class StreamProcessing(pulumi.ComponentResource):
    """The job (compat 1.2, system-assigned identity), its input, output and query.

    Deploying does not start the job: it must start after dbo.SensorReadings and the job's
    contained database user exist (the post-deploy steps), so `job_name`, `job_id`,
    `principal_id` and `client_id` (its identity's application id, the user's SID) are
    exposed for them.

    Day two: Azure refuses to update a running job, its input or its output
    (pulumi-azure-native#785), so all three carry a `before_update` hook that stops the job
    (:func:`components.providers.stream_job.stop_before_update_hook`). The query and the
    streaming units, and the event and error policies, never update the job itself: the
    job's PUT has no inputs and Azure refuses it (pulumi-azure-native#688), so the job ignores
    changes to them and `job_definition` (:mod:`components.providers.stream_definition`) patches
    them in place, the job stopped first.

    SKU: `Standard` (streaming units V1: 1, 3, 6, then multiples of 6). `StandardV2` (SU V2:
    3, 7, 10, then multiples of 10 up to 660, as the azure-quickstart-templates sample
    `streamanalytics-create` declares them) exists only in API version 2021-10-01-preview,
    while pulumi-azure-native 3.x's StreamingJob speaks 2020-03-01, whose SKU enum holds
    `Standard` alone (as does azure-mgmt-streamanalytics 1.0.0); another API version needs a
    locally generated SDK (`pulumi package add azure-native streamanalytics
    2021-10-01-preview`) pinning a preview API into the stack. A test fails once the provider
    offers StandardV2, so the move is made then. `config_hash` is the
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
        self.cluster = self._private_cluster(name, args)
        definition = self.definition(args, self.query, self.cluster.id if self.cluster else None)
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
        self.job_definition = self._job_definition(name, args, definition["job"])
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
            **{k: v for k, v in job.items() if k not in _NESTED},
            **(
                {"cluster": streamanalytics.ClusterInfoArgs(**job["cluster"])}
                if "cluster" in job
                else {}
            ),
            # The job's own PUT carries no inputs and Azure refuses it once the job has some
            # (pulumi-azure-native#688): what may change is patched by `self.job_definition`.
            opts=pulumi.ResourceOptions.merge(
                child_options(self, hooks=stop_first),
                pulumi.ResourceOptions(ignore_changes=list(JOB_PATCHED_PROPERTIES)),
            ),
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

    def _job_definition(
        self, name: str, args: StreamProcessingArgs, job: dict[str, Any]
    ) -> StreamJobDefinitionResource:
        """What may change on a running job (the query, the streaming units, the event and
        error policies), patched in place after the input and output exist."""
        transformation = job["transformation"]
        return StreamJobDefinitionResource(
            f"{name}-definition",
            {
                "subscriptionId": args.subscription_id,
                "resourceGroupName": args.placement.resource_group_name,
                "jobName": self.job.name,
                "transformationName": transformation["name"],
                "settings": {key: job[attribute] for key, attribute in JOB_SETTINGS.items()},
                "query": transformation["query"],
                "streamingUnits": transformation["streaming_units"],
            },
            child_options(self, depends_on=[self.input, self.output]),
        )

    def _private_cluster(
        self, name: str, args: StreamProcessingArgs
    ) -> streamanalytics.Cluster | None:
        """With private networking, a dedicated Stream Analytics cluster and its managed private
        endpoints to the namespace and the SQL server; None otherwise.

        Why a cluster and not VNet injection of the job: "Connect Stream Analytics jobs to
        resources in an Azure Virtual Network" (learn.microsoft.com/azure/stream-analytics/
        connect-job-to-vnet) offers both, but injection ("Run your Azure Stream Analytics job
        in an Azure Virtual Network") is set up in the portal or the VS Code job config only:
        the job's ARM schema has no subnet property (Azure/azure-stream-analytics#187,
        Azure/terraform-provider-azapi#383), so it cannot be declared here. A cluster's managed
        private endpoints can (`Microsoft.StreamAnalytics/clusters/privateEndpoints`). Each
        connection then waits for approval on its target (docs/networking.md): the job starts
        only after both are approved.
        """
        if not args.network_isolation:
            return None
        if args.event_hubs_namespace_id is None or args.sql_server_id is None:
            raise ValueError("network_isolation needs event_hubs_namespace_id and sql_server_id")
        place = args.placement
        cluster = streamanalytics.Cluster(
            f"{name}-cluster",
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=streamanalytics.ClusterSkuArgs(name="Default", capacity=CLUSTER_CAPACITY),
            tags=dict(place.tags),
            opts=child_options(self),
        )
        targets = {"eventhubs": args.event_hubs_namespace_id, "sql": args.sql_server_id}
        for label, group in CLUSTER_ENDPOINT_GROUPS.items():
            streamanalytics.PrivateEndpoint(
                f"{name}-cluster-{label}-endpoint",
                private_endpoint_name=f"{label}-endpoint",
                cluster_name=cluster.name,
                resource_group_name=place.resource_group_name,
                manual_private_link_service_connections=[
                    streamanalytics.PrivateLinkServiceConnectionArgs(
                        private_link_service_id=targets[label], group_ids=[group]
                    )
                ],
                opts=child_options(self),
            )
        return cluster

    @staticmethod
    def definition(
        args: StreamProcessingArgs,
        query: str,
        cluster_id: pulumi.Input[str] | None = None,
    ) -> dict[str, Any]:
        """Every value the job, its input and its output are declared with (arguments of the
        SDK's classes, snake_case), the one source of both the resources and `config_hash`.
        With private networking the job names its cluster (`cluster_id`)."""
        placement = {"cluster": {"id": cluster_id}} if args.network_isolation else {}
        return {
            "job": {
                **placement,
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
