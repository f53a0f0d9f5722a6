"""Ingestion: Event Hubs namespace (Entra only), the `sensor-readings` hub with Capture of
raw events into the `raw` container, and the consumer group Stream Analytics reads with.

Capture writes as the namespace's system-assigned identity, which holds Storage Blob Data
Contributor on the storage account: the scope "Authenticate modes for capturing events to
destinations in Azure Event Hubs" (learn.microsoft.com) gives ("On the target Azure Storage
... account, ... add this managed identity to the Storage Blob Data Contributor role").
Switching Capture on also checks the *deploying* identity's data access to the account
(Azure/azure-sdk-for-js#30204), so the hub waits for the stack's `deployer_data_access`
(`capture_depends_on`). The capture agent itself writes on a timer and tries again at the
next interval, so a few minutes of propagation of its own role lose no event (the hub keeps
them for `eventHubRetentionHours`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pulumi
from pulumi_azure_native import eventhub

from components.network import PrivateLink, private_endpoint
from components.shared.diagnostics import send_to_log_analytics
from components.shared.placement import Placement, child_options
from components.shared.roles import assign_role

HUB_NAME = "sensor-readings"
CONSUMER_GROUP = "stream-analytics"
# Capture writes one Avro file per partition and interval under this path in `raw`.
CAPTURE_PATH = "{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}"


@dataclass
class IngestionArgs:
    placement: Placement
    namespace_name: pulumi.Input[str]
    capacity: int
    zone_redundant: bool
    partition_count: int
    retention_hours: int
    capture_interval_seconds: int
    capture_size_limit_bytes: int
    storage_account_id: pulumi.Input[str]
    raw_container_name: str
    subscription_id: pulumi.Input[str]
    log_analytics_workspace_id: pulumi.Input[str]
    # What must be in effect before Capture is switched on (the deployer's data access).
    capture_depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    # Private networking: producers and Stream Analytics reach the namespace through private
    # endpoints only (components/network.py, components/stream_processing.py).
    private_link: PrivateLink | None = None
    protect: bool = False


class Ingestion(pulumi.ComponentResource):
    """Standard namespace with local (SAS) auth off; Capture runs as the namespace identity."""

    namespace_name: pulumi.Output[str]
    namespace_id: pulumi.Output[str]
    namespace_fqdn: pulumi.Output[str]
    hub_name: pulumi.Output[str]
    hub_id: pulumi.Output[str]
    consumer_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: IngestionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:Ingestion", name, None, opts)
        self.namespace = self._namespace(name, args)
        self.namespace_name = self.namespace.name
        self.namespace_id = self.namespace.id
        self.namespace_fqdn = self.namespace.service_bus_endpoint.apply(
            lambda endpoint: urlparse(endpoint).hostname or ""
        )
        self._private_endpoint(name, args)

        self.hub = self._hub_with_capture(name, args, self._capture_writer(name, args))
        self.hub_name = self.hub.name
        self.hub_id = self.hub.id
        self.consumer_group = self._consumer_group(name, args)
        self.consumer_group_name = self.consumer_group.name

        send_to_log_analytics(
            f"{name}-namespace-diagnostics",
            resource_id=self.namespace.id,
            workspace_id=args.log_analytics_workspace_id,
            parent=self,
        )
        self.register_outputs(
            {
                "namespaceFqdn": self.namespace_fqdn,
                "hubName": self.hub_name,
                "consumerGroupName": self.consumer_group_name,
            }
        )

    def _namespace(self, name: str, args: IngestionArgs) -> eventhub.Namespace:
        """The Standard namespace: Entra only (SAS off), TLS 1.2, and a system-assigned
        identity, because Capture to a storage account without shared keys runs as it."""
        place = args.placement
        return eventhub.Namespace(
            f"{name}-namespace",
            namespace_name=args.namespace_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=eventhub.SkuArgs(name="Standard", tier="Standard", capacity=args.capacity),
            disable_local_auth=True,
            minimum_tls_version="1.2",
            public_network_access="Enabled" if args.private_link is None else "Disabled",
            zone_redundant=args.zone_redundant,
            identity=eventhub.IdentityArgs(type="SystemAssigned"),
            tags=dict(place.tags),
            opts=child_options(self, protect=args.protect),
        )

    def _private_endpoint(self, name: str, args: IngestionArgs) -> None:
        """With private networking, the namespace's endpoint: producers send through the VNet
        (Stream Analytics reads through its cluster's own managed endpoint)."""
        if args.private_link is not None:
            private_endpoint(
                f"{name}-namespace",
                parent=self,
                placement=args.placement,
                link=args.private_link,
                resource_id=self.namespace.id,
                group_id="namespace",
            )

    def _capture_writer(self, name: str, args: IngestionArgs) -> pulumi.Resource:
        """Storage Blob Data Contributor on the account for the namespace identity (Capture)."""
        return assign_role(
            f"{name}-capture-writer",
            role="Storage Blob Data Contributor",
            principal_id=self.namespace.identity.apply(lambda i: i.principal_id),
            scope=args.storage_account_id,
            subscription_id=args.subscription_id,
            parent=self,
        )

    def _hub_with_capture(
        self, name: str, args: IngestionArgs, capture_writer: pulumi.Resource
    ) -> eventhub.EventHub:
        """The hub, capturing raw events as Avro into `raw`. Switching Capture on checks the
        namespace's role and the deployer's access to the account (module docstring), so the
        hub waits for both."""
        return eventhub.EventHub(
            f"{name}-hub",
            event_hub_name=HUB_NAME,
            namespace_name=self.namespace.name,
            resource_group_name=args.placement.resource_group_name,
            partition_count=args.partition_count,
            retention_description=eventhub.RetentionDescriptionArgs(
                cleanup_policy="Delete", retention_time_in_hours=args.retention_hours
            ),
            capture_description=eventhub.CaptureDescriptionArgs(
                enabled=True,
                encoding="Avro",
                interval_in_seconds=args.capture_interval_seconds,
                size_limit_in_bytes=args.capture_size_limit_bytes,
                skip_empty_archives=True,
                destination=eventhub.DestinationArgs(
                    name="EventHubArchive.AzureBlockBlob",
                    storage_account_resource_id=args.storage_account_id,
                    blob_container=args.raw_container_name,
                    archive_name_format=CAPTURE_PATH,
                    identity=eventhub.CaptureIdentityArgs(type="SystemAssigned"),
                ),
            ),
            opts=child_options(self, depends_on=[capture_writer, *args.capture_depends_on]),
        )

    def _consumer_group(self, name: str, args: IngestionArgs) -> eventhub.ConsumerGroup:
        """Stream Analytics' own consumer group, so no other reader moves its offsets."""
        return eventhub.ConsumerGroup(
            f"{name}-stream-analytics",
            consumer_group_name=CONSUMER_GROUP,
            event_hub_name=self.hub.name,
            namespace_name=self.namespace.name,
            resource_group_name=args.placement.resource_group_name,
            user_metadata="Read by the Stream Analytics job only.",
            opts=child_options(self),
        )
