"""Storage: the account (Entra-only, TLS 1.2, private blobs) and the raw/models/predictions
containers. It is also the AML workspace's default storage."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import storage

from components.shared.diagnostics import send_to_log_analytics
from components.shared.placement import Placement, child_options

CONTAINERS = ("raw", "models", "predictions")


@dataclass
class StorageArgs:
    placement: Placement
    account_name: pulumi.Input[str]
    sku: str
    soft_delete_days: int
    log_analytics_workspace_id: pulumi.Input[str]
    protect: bool = False


class Storage(pulumi.ComponentResource):
    """StorageV2 account with shared keys off and the three containers of the design."""

    account_name: pulumi.Output[str]
    account_id: pulumi.Output[str]
    blob_endpoint: pulumi.Output[str]
    container_names: dict[str, str]
    container_ids: dict[str, pulumi.Output[str]]
    container_urls: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:Storage", name, None, opts)
        place = args.placement
        self.account = storage.StorageAccount(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name=args.sku),
            access_tier="Hot",
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            public_network_access="Enabled",
            tags=dict(place.tags),
            opts=child_options(self, protect=args.protect),
        )
        self.account_name = self.account.name
        self.account_id = self.account.id
        self.blob_endpoint = self.account.primary_endpoints.apply(lambda e: e.blob)

        # Soft delete keeps deleted blobs and containers recoverable for the configured days.
        blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=self.account.name,
            resource_group_name=place.resource_group_name,
            blob_services_name="default",
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            opts=child_options(self),
        )

        self.containers: dict[str, storage.BlobContainer] = {}
        for container in CONTAINERS:
            self.containers[container] = storage.BlobContainer(
                f"{name}-{container}",
                account_name=self.account.name,
                resource_group_name=place.resource_group_name,
                container_name=container,
                public_access="None",
                opts=child_options(self, protect=args.protect, depends_on=[blob_service]),
            )
        self.container_names = {c: c for c in CONTAINERS}
        self.container_ids = {c: r.id for c, r in self.containers.items()}
        self.container_urls = {
            c: pulumi.Output.concat(self.blob_endpoint.apply(lambda e: e.rstrip("/")), "/", c)
            for c in CONTAINERS
        }

        # The account exposes metrics only; the blob service has the logs. Storage calls its
        # exportable metrics `Transaction` (it has no `AllMetrics` category).
        send_to_log_analytics(
            f"{name}-account-diagnostics",
            resource_id=self.account.id,
            workspace_id=args.log_analytics_workspace_id,
            parent=self,
            logs=False,
            metric_category="Transaction",
        )
        send_to_log_analytics(
            f"{name}-blob-diagnostics",
            resource_id=pulumi.Output.concat(self.account.id, "/blobServices/default"),
            workspace_id=args.log_analytics_workspace_id,
            parent=self,
            metric_category="Transaction",
        )
        self.register_outputs(
            {
                "accountName": self.account_name,
                "accountId": self.account_id,
                "containerUrls": self.container_urls,
            }
        )
