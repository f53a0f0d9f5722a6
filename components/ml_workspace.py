"""MlWorkspace: Application Insights, Key Vault, the Azure ML workspace with identity-based
datastores, the autoscaling AmlCompute cluster and the roles its identity needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import (
    applicationinsights,
    authorization,
    keyvault,
    managedidentity,
)
from pulumi_azure_native import (
    machinelearningservices as ml,
)

from components.network import PrivateLink, private_endpoint
from components.shared.diagnostics import send_to_log_analytics
from components.shared.immutable_inputs import refuse_change_hook
from components.shared.placement import Placement, child_options
from components.shared.roles import assign_role

CLUSTER_NAME = "cpu-cluster"  # scoped to the workspace; AML allows 2..16 characters
# The cluster's identity on the storage account: blobs for data, queues and tables for the
# parallel job's bookkeeping (shared keys are off, so it cannot fall back to keys).
CLUSTER_STORAGE_ROLES = (
    "Storage Blob Data Contributor",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
)
# The managed network's own private endpoints to the workspace's storage (blob, file), vault
# and registry are "required rules" the service adds itself in AllowOnlyApprovedOutbound mode;
# these are the ones the scoring pipeline needs on top ("Managed virtual network isolation",
# learn.microsoft.com/azure/machine-learning/how-to-managed-network: "Scenario: Use batch
# endpoints or ParallelRunStep" asks for queue and table; the extract step reads Azure SQL).
# Private endpoint rules only: an FQDN rule would bring an Azure Firewall and its cost, and
# nothing needs the internet (the image is prebuilt and pulled from the registry).
STORAGE_OUTBOUND_SUBRESOURCES = ("queue", "table")


@dataclass
class MlWorkspaceArgs:
    placement: Placement
    workspace_name: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    log_analytics_workspace_id: pulumi.Input[str]
    storage_account_id: pulumi.Input[str]
    storage_account_name: pulumi.Input[str]
    datastore_containers: dict[str, str]  # datastore name -> container name
    registry_id: pulumi.Input[str]
    key_vault_soft_delete_days: int
    vm_size: str
    vm_priority: str
    min_nodes: int
    max_nodes: int
    idle_time_before_scale_down: str
    # Container name -> the container resource: a datastore is created after its container.
    containers: Mapping[str, pulumi.Resource] = field(default_factory=dict)
    # Private networking: public access off on the workspace and its vault, the workspace's
    # managed network in AllowOnlyApprovedOutbound mode, cluster nodes without public IPs.
    private_link: PrivateLink | None = None
    # With private_link: the SQL server the extract step reads (an outbound rule).
    sql_server_id: pulumi.Input[str] | None = None
    protect: bool = False


class MlWorkspace(pulumi.ComponentResource):
    """Workspace + cluster; exposes what the scoring pipeline and the SQL bootstrap need."""

    workspace_name: pulumi.Output[str]
    workspace_id: pulumi.Output[str]
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    cluster_name: pulumi.Output[str]
    cluster_identity_id: pulumi.Output[str]
    cluster_identity_name: pulumi.Output[str]
    cluster_identity_client_id: pulumi.Output[str]
    cluster_identity_principal_id: pulumi.Output[str]
    datastore_names: dict[str, pulumi.Output[str]]
    app_insights_id: pulumi.Output[str]
    app_insights_connection_string: pulumi.Output[str]

    def __init__(
        self, name: str, args: MlWorkspaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:MlWorkspace", name, None, opts)
        self.resource_group_name = args.placement.resource_group_name
        self.subscription_id = args.subscription_id

        self.app_insights = self._observability(name, args)
        self.app_insights_id = self.app_insights.id
        # Names the component and its ingestion endpoint; not a credential (local auth is off,
        # ingestion takes an Entra token): see scoring/telemetry.py.
        self.app_insights_connection_string = self.app_insights.connection_string
        self.key_vault, self.workspace = self._workspace(name, args)
        self.workspace_name = self.workspace.name
        self.workspace_id = self.workspace.id
        self.outbound_rules = self._outbound_rules(name, args)
        self._private_endpoints(name, args)

        self.cluster_identity, self.cluster_role_assignments = self._cluster_identity_and_roles(
            name, args
        )
        self.cluster_identity_id = self.cluster_identity.id
        self.cluster_identity_name = self.cluster_identity.name
        self.cluster_identity_client_id = self.cluster_identity.client_id
        self.cluster_identity_principal_id = self.cluster_identity.principal_id

        self.cluster = self._cluster(name, args)
        self.cluster_name = self.cluster.name

        self.datastores = self._datastores(name, args)
        self.datastore_names = {k: d.name for k, d in self.datastores.items()}

        self._diagnostics(name, args)
        self.register_outputs(
            {
                "workspaceName": self.workspace_name,
                "workspaceId": self.workspace_id,
                "clusterName": self.cluster_name,
                "clusterIdentityClientId": self.cluster_identity_client_id,
                "appInsightsId": self.app_insights_id,
            }
        )

    def _observability(self, name: str, args: MlWorkspaceArgs) -> applicationinsights.Component:
        """Workspace-based Application Insights over the stack's Log Analytics workspace."""
        place = args.placement
        return applicationinsights.Component(
            f"{name}-insights",
            resource_group_name=place.resource_group_name,
            location=place.location,
            kind="web",
            application_type="other",
            ingestion_mode="LogAnalytics",
            workspace_resource_id=args.log_analytics_workspace_id,
            disable_local_auth=True,
            tags=dict(place.tags),
            opts=child_options(self),
        )

    def _workspace(self, name: str, args: MlWorkspaceArgs) -> tuple[keyvault.Vault, ml.Workspace]:
        """The Key Vault (RBAC, purge protection) and the workspace over it, the storage
        account, the registry and Application Insights."""
        place = args.placement
        # "The retention policy interval can only be configured during vault creation and
        # can't be changed afterwards" (learn.microsoft.com/azure/key-vault/general/
        # soft-delete-overview). Replacing the vault is no way out either: purge protection
        # keeps its name taken for the whole retention. So a change is refused by name.
        self.vault_retention_hook = refuse_change_hook(
            f"{name}-vault-retention-is-fixed",
            path=("properties", "softDeleteRetentionInDays"),
            config_key="keyVaultSoftDeleteDays",
            reason="Key Vault fixes its soft-delete retention when the vault is created",
        )
        key_vault = keyvault.Vault(
            f"{name}-vault",
            vault_name=args.key_vault_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name="standard"),
                enable_rbac_authorization=True,
                enable_purge_protection=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.key_vault_soft_delete_days,
                public_network_access=_public_access(args),
                access_policies=[],
            ),
            tags=dict(place.tags),
            opts=child_options(
                self,
                protect=args.protect,
                hooks=pulumi.ResourceHookBinding(before_update=[self.vault_retention_hook]),
            ),
        )
        workspace = ml.Workspace(
            f"{name}-workspace",
            workspace_name=args.workspace_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=ml.SkuArgs(name="Basic", tier="Basic"),
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            storage_account=args.storage_account_id,
            key_vault=key_vault.id,
            application_insights=self.app_insights.id,
            container_registry=args.registry_id,
            # The storage account refuses shared keys: the workspace's own datastores
            # (workspaceblobstore, ...) must reach it with identities. ARM value `identity`.
            system_datastores_auth_mode="identity",
            public_network_access=_public_access(args),
            **self._managed_network(args),
            v1_legacy_mode=False,
            tags=dict(place.tags),
            opts=child_options(self, protect=args.protect),
        )
        return key_vault, workspace

    @staticmethod
    def _managed_network(args: MlWorkspaceArgs) -> dict[str, object]:
        """The workspace's managed network, approved outbound only. Its rules are separate
        resources (:meth:`_outbound_rules`), not listed here: declaring them in the workspace
        and as resources would make each overwrite the other. Once enabled on a workspace it
        cannot be turned off (the preflight warns before enabling it on an existing one)."""
        if args.private_link is None:
            return {}
        return {
            "managed_network": ml.ManagedNetworkSettingsArgs(
                isolation_mode="AllowOnlyApprovedOutbound"
            )
        }

    def _outbound_rules(
        self, name: str, args: MlWorkspaceArgs
    ) -> list[ml.ManagedNetworkSettingsRule]:
        """Private endpoint outbound rules of the managed network, each created after the one
        before it: rules created at the same time remove each other (Azure/terraform-provider-
        azapi#453)."""
        if args.private_link is None:
            return []
        if args.sql_server_id is None:
            raise ValueError("private_link needs sql_server_id (the extract step's SQL)")
        targets = [(f"storage-{sub}", args.storage_account_id, sub) for sub in
                   STORAGE_OUTBOUND_SUBRESOURCES]  # fmt: skip
        targets.append(("sql", args.sql_server_id, "sqlServer"))
        rules: list[ml.ManagedNetworkSettingsRule] = []
        for rule_name, resource_id, subresource in targets:
            rules.append(
                ml.ManagedNetworkSettingsRule(
                    f"{name}-outbound-{rule_name}",
                    rule_name=rule_name,
                    workspace_name=self.workspace.name,
                    resource_group_name=args.placement.resource_group_name,
                    properties=ml.PrivateEndpointOutboundRuleArgs(
                        type="PrivateEndpoint",
                        category="UserDefined",
                        destination=ml.PrivateEndpointDestinationArgs(
                            service_resource_id=resource_id,
                            subresource_target=subresource,
                            spark_enabled=False,
                        ),
                    ),
                    opts=child_options(self, depends_on=rules[-1:]),
                )
            )
        return rules

    def _private_endpoints(self, name: str, args: MlWorkspaceArgs) -> None:
        """With private networking, the vault's and the workspace's endpoints in the stack's
        VNet: how the deployment runner (component registration, schedules) and people reach
        them. The cluster reaches them through the managed network instead."""
        if args.private_link is None:
            return
        for label, resource, group in (
            ("vault", self.key_vault, "vault"),
            ("workspace", self.workspace, "amlworkspace"),
        ):
            private_endpoint(
                f"{name}-{label}",
                parent=self,
                placement=args.placement,
                link=args.private_link,
                resource_id=resource.id,
                group_id=group,
            )

    def _cluster_identity_and_roles(
        self, name: str, args: MlWorkspaceArgs
    ) -> tuple[managedidentity.UserAssignedIdentity, list[authorization.RoleAssignment]]:
        """The cluster's user-assigned identity and its data-plane roles: blob, queue and table
        data on the storage account, AcrPull on the registry, telemetry to Application
        Insights."""
        place = args.placement
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-cluster-identity",
            resource_group_name=place.resource_group_name,
            location=place.location,
            tags=dict(place.tags),
            opts=child_options(self),
        )
        grants = [
            assign_role(
                f"{name}-cluster-{role.split()[1].lower()}-data",
                role=role,
                principal_id=identity.principal_id,
                scope=args.storage_account_id,
                subscription_id=args.subscription_id,
                parent=self,
            )
            for role in CLUSTER_STORAGE_ROLES
        ]
        grants.append(
            assign_role(
                f"{name}-cluster-acr-pull",
                role="AcrPull",
                principal_id=identity.principal_id,
                scope=args.registry_id,
                subscription_id=args.subscription_id,
                parent=self,
            )
        )
        # The publish step sends each run's summary to Application Insights as this identity.
        grants.append(
            assign_role(
                f"{name}-cluster-telemetry-publisher",
                role="Monitoring Metrics Publisher",
                principal_id=identity.principal_id,
                scope=self.app_insights.id,
                subscription_id=args.subscription_id,
                parent=self,
            )
        )
        return identity, grants

    def _cluster(self, name: str, args: MlWorkspaceArgs) -> ml.Compute:
        """The AmlCompute cluster, running as the cluster identity, created after its roles."""
        place = args.placement
        return ml.Compute(
            f"{name}-cluster",
            compute_name=CLUSTER_NAME,
            workspace_name=self.workspace.name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            identity=ml.ManagedServiceIdentityArgs(
                type="UserAssigned", user_assigned_identities=[self.cluster_identity.id]
            ),
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                disable_local_auth=True,
                description="Scores every (Device, Sensor) model; scales to its minimum when idle.",
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=args.vm_size,
                    vm_priority=args.vm_priority,
                    os_type="Linux",
                    remote_login_port_public_access="Disabled",
                    # In the managed network nodes need no public IP: the service reaches them
                    # through the network's private link (how-to-managed-network).
                    **({} if args.private_link is None else {"enable_node_public_ip": False}),
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=args.min_nodes,
                        max_node_count=args.max_nodes,
                        node_idle_time_before_scale_down=args.idle_time_before_scale_down,
                    ),
                ),
            ),
            tags=dict(place.tags),
            # Nodes must be able to pull the image and reach storage (and, in a managed network,
            # SQL) from their first job; the cluster's creation provisions the managed network.
            opts=child_options(
                self, depends_on=[*self.cluster_role_assignments, *self.outbound_rules]
            ),
        )

    def _datastores(self, name: str, args: MlWorkspaceArgs) -> dict[str, ml.Datastore]:
        """One identity-based blob datastore per container (datastore name -> datastore)."""
        datastores: dict[str, ml.Datastore] = {}
        for datastore, container in args.datastore_containers.items():
            datastores[datastore] = ml.Datastore(
                f"{name}-{datastore}-datastore",
                name=datastore,
                workspace_name=self.workspace.name,
                resource_group_name=args.placement.resource_group_name,
                properties=ml.AzureBlobDatastoreArgs(
                    datastore_type="AzureBlob",
                    account_name=args.storage_account_name,
                    container_name=container,
                    endpoint="core.windows.net",
                    protocol="https",
                    # No stored credential: data is read as the caller or the compute.
                    credentials=ml.NoneDatastoreCredentialsArgs(credentials_type="None"),
                    service_data_access_auth_identity="None",
                    description=f"The {container} container, identity-based access.",
                ),
                opts=child_options(
                    self,
                    depends_on=[args.containers[c] for c in (container,) if c in args.containers],
                ),
            )
        return datastores

    def _diagnostics(self, name: str, args: MlWorkspaceArgs) -> None:
        """The workspace's and the vault's logs and metrics to Log Analytics."""
        for resource, label in ((self.workspace, "workspace"), (self.key_vault, "vault")):
            send_to_log_analytics(
                f"{name}-{label}-diagnostics",
                resource_id=resource.id,
                workspace_id=args.log_analytics_workspace_id,
                parent=self,
            )


def _public_access(args: MlWorkspaceArgs) -> str:
    return "Enabled" if args.private_link is None else "Disabled"
