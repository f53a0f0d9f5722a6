"""Storage: the account (Entra-only, TLS 1.2, private blobs) and the raw/models/predictions
containers, plus `stack-outputs`, where the stack publishes its outputs for other teams
(:mod:`components.published_outputs`). It is also the AML workspace's default storage.

The identity running `pulumi up` gets Storage Blob Data Contributor on the account: the same
deployment switches on Event Hubs Capture into it and uploads the scoring components' code to
it, both as that identity (shared keys are off, so there is no other way in), and it pushes
models there afterwards. `deployer_data_access` exists once the role is in effect
(:mod:`components.providers.data_access`): resources that need it depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import storage

from components.network import PrivateLink, private_endpoint
from components.providers.data_access import DataAccessWait
from components.shared.diagnostics import send_to_log_analytics
from components.shared.placement import Placement, child_options
from components.shared.roles import assign_role

CONTAINERS = ("raw", "models", "predictions", "stack-outputs")
DEPLOYER_ROLE = "Storage Blob Data Contributor"
PRIVATE_SUBRESOURCES = ("blob", "file", "queue", "table")


@dataclass
class StorageArgs:
    placement: Placement
    account_name: pulumi.Input[str]
    sku: str
    soft_delete_days: int
    log_analytics_workspace_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    deployer_object_id: pulumi.Input[str]
    # User or ServicePrincipal when the config knows it; None lets ARM look the principal up.
    deployer_principal_type: str | None = None
    # Private networking: the account refuses every network but its private endpoints
    # (components/network.py) and trusted Azure services (Event Hubs Capture).
    private_link: PrivateLink | None = None
    protect: bool = False


class Storage(pulumi.ComponentResource):
    """StorageV2 account with shared keys off and the three containers of the design."""

    account_name: pulumi.Output[str]
    account_id: pulumi.Output[str]
    blob_endpoint: pulumi.Output[str]
    container_names: dict[str, str]
    container_ids: dict[str, pulumi.Output[str]]
    container_urls: dict[str, pulumi.Output[str]]
    deployer_data_access: pulumi.Resource

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:Storage", name, None, opts)
        self.account = self._account(name, args)
        self.account_name = self.account.name
        self.account_id = self.account.id
        self.blob_endpoint = self.account.primary_endpoints.apply(lambda e: e.blob)

        self.containers = self._containers(name, args, self._blob_service(name, args))
        self.container_names = {c: c for c in CONTAINERS}
        self.container_ids = {c: r.id for c, r in self.containers.items()}
        self.container_urls = {
            c: pulumi.Output.concat(self.blob_endpoint.apply(lambda e: e.rstrip("/")), "/", c)
            for c in CONTAINERS
        }

        self.private_endpoints = self._private_endpoints(name, args)
        self.deployer_data_access = self._deployer_access(name, args)
        self._diagnostics(name, args)
        self.register_outputs(
            {
                "accountName": self.account_name,
                "accountId": self.account_id,
                "containerUrls": self.container_urls,
            }
        )

    def _account(self, name: str, args: StorageArgs) -> storage.StorageAccount:
        """The StorageV2 account: Entra only (shared keys off, OAuth by default), TLS 1.2,
        HTTPS only, no anonymous blob access, no replication to other tenants."""
        place = args.placement
        return storage.StorageAccount(
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
            **self._network_rules(args),
            tags=dict(place.tags),
            opts=child_options(self, protect=args.protect),
        )

    @staticmethod
    def _network_rules(args: StorageArgs) -> dict[str, object]:
        """With private networking, a firewall that denies every public address and keeps one
        exception: trusted Azure services. Event Hubs Capture writes `raw` from the Event Hubs
        service itself, not from a network of ours; it is a trusted service when it writes
        with its managed identity ("Grant access to trusted Azure services", learn.microsoft.
        com/azure/storage/common/storage-network-security). Public network access stays
        `Enabled` for that exception only (`Disabled` would also turn trusted services away);
        the policy pack accepts this account only with the firewall's default action Deny and
        no IP or VNet rule."""
        if args.private_link is None:
            return {}
        return {
            "network_rule_set": storage.NetworkRuleSetArgs(
                default_action="Deny",
                bypass="AzureServices",
                ip_rules=[],
                virtual_network_rules=[],
            )
        }

    def _blob_service(self, name: str, args: StorageArgs) -> storage.BlobServiceProperties:
        """Soft delete keeps deleted blobs and containers recoverable for the configured days."""
        return storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=self.account.name,
            resource_group_name=args.placement.resource_group_name,
            blob_services_name="default",
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.soft_delete_days
            ),
            opts=child_options(self),
        )

    def _containers(
        self, name: str, args: StorageArgs, blob_service: storage.BlobServiceProperties
    ) -> dict[str, storage.BlobContainer]:
        """The private containers of the design, created once soft delete covers them."""
        return {
            container: storage.BlobContainer(
                f"{name}-{container}",
                account_name=self.account.name,
                resource_group_name=args.placement.resource_group_name,
                container_name=container,
                public_access="None",
                opts=child_options(self, protect=args.protect, depends_on=[blob_service]),
            )
            for container in CONTAINERS
        }

    def _private_endpoints(self, name: str, args: StorageArgs) -> dict[str, pulumi.Resource]:
        """With private networking, an endpoint per sub-resource the stack and the workspace
        use: blob (data, code upload), file (the workspace's file share), queue and table (the
        parallel job's bookkeeping). Sub-resource -> its DNS zone group."""
        if args.private_link is None:
            return {}
        return {
            sub: private_endpoint(
                f"{name}-{sub}",
                parent=self,
                placement=args.placement,
                link=args.private_link,
                resource_id=self.account.id,
                group_id=sub,
            )
            for sub in PRIVATE_SUBRESOURCES
        }

    def _deployer_access(self, name: str, args: StorageArgs) -> pulumi.Resource:
        """Storage Blob Data Contributor on the account for whoever runs `pulumi up`, and the
        wait until it is in effect (probed on the raw container)."""
        grant = assign_role(
            f"{name}-deployer-blob-data",
            role=DEPLOYER_ROLE,
            principal_id=args.deployer_object_id,
            principal_type=args.deployer_principal_type,
            scope=self.account.id,
            subscription_id=args.subscription_id,
            parent=self,
        )
        return DataAccessWait(
            f"{name}-deployer-access-ready",
            {
                "accountName": self.account.name,
                "containerName": self.containers["raw"].name,
                "role": DEPLOYER_ROLE,
                "scope": self.account.id,
                "assignmentId": grant.id,
            },
            # Behind private networking the probe goes through the blob endpoint.
            pulumi.ResourceOptions(
                parent=self,
                depends_on=[grant, self.containers["raw"], *self.private_endpoints.values()],
            ),
        )

    def _diagnostics(self, name: str, args: StorageArgs) -> None:
        """The account exposes metrics only; the blob service has the logs. Storage calls its
        exportable metrics `Transaction` (it has no `AllMetrics` category)."""
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
