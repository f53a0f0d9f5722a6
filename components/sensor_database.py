"""SensorDatabase: Azure SQL server (Entra-only authentication, TLS 1.2) and the database
Stream Analytics writes dbo.SensorReadings into (serverless with auto-pause in dev).

The table and the contained users of the job's and the cluster's identities are created
after deploy by T-SQL (components/sql_bootstrap.py), never by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import sql

from components.config.stack import sql_sku_parts
from components.network import PrivateLink, private_endpoint
from components.shared.diagnostics import send_to_log_analytics
from components.shared.placement import Placement, child_options

DATABASE_NAME = "sensors"
# The special 0.0.0.0 rule is "Allow Azure services": Stream Analytics (no VNet) needs it.
ALLOW_AZURE_SERVICES = ("0.0.0.0", "0.0.0.0")
SERVERLESS_MIN_CAPACITY = 0.5


@dataclass
class EntraAdmin:
    """The server's Entra admin (a user, group or app); no SQL logins exist at all."""

    login: pulumi.Input[str]
    object_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    principal_type: str = "User"


@dataclass
class SensorDatabaseArgs:
    placement: Placement
    server_name: pulumi.Input[str]
    admin: EntraAdmin
    sku: str
    serverless: bool
    auto_pause_delay_minutes: int
    max_size_gb: int
    zone_redundant: bool
    backup_storage_redundancy: str
    log_analytics_workspace_id: pulumi.Input[str]
    firewall_ranges: list[tuple[str, str]] = field(default_factory=list)
    # Private networking: private endpoint connections only, and no firewall rule at all
    # (Azure refuses them while public access is off, Azure/azure-cli#16771).
    private_link: PrivateLink | None = None
    protect: bool = False


class SensorDatabase(pulumi.ComponentResource):
    """Server + firewall + database; exposes what the SQL bootstrap and the job need."""

    server_name: pulumi.Output[str]
    server_fqdn: pulumi.Output[str]
    server_id: pulumi.Output[str]
    database_name: pulumi.Output[str]
    database_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: SensorDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:SensorDatabase", name, None, opts)
        self.server = self._server(name, args)
        self.server_name = self.server.name
        self.server_id = self.server.id
        self.server_fqdn = self.server.fully_qualified_domain_name
        self._firewall(name, args)
        self._private_endpoint(name, args)

        self.database = self._database(name, args)
        self.database_name = self.database.name
        self.database_id = self.database.id
        send_to_log_analytics(
            f"{name}-database-diagnostics",
            resource_id=self.database.id,
            workspace_id=args.log_analytics_workspace_id,
            parent=self,
        )
        self.register_outputs({"serverFqdn": self.server_fqdn, "databaseName": self.database_name})

    def _server(self, name: str, args: SensorDatabaseArgs) -> sql.Server:
        """The logical server: Entra-only authentication with the configured admin, TLS 1.2."""
        place = args.placement
        return sql.Server(
            f"{name}-server",
            server_name=args.server_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            version="12.0",
            minimal_tls_version="1.2",
            public_network_access="Enabled" if args.private_link is None else "Disabled",
            administrators=sql.ServerExternalAdministratorArgs(
                administrator_type="ActiveDirectory",
                azure_ad_only_authentication=True,
                login=args.admin.login,
                sid=args.admin.object_id,
                tenant_id=args.admin.tenant_id,
                principal_type=args.admin.principal_type,
            ),
            tags=dict(place.tags),
            opts=child_options(self, protect=args.protect),
        )

    def _private_endpoint(self, name: str, args: SensorDatabaseArgs) -> None:
        """With private networking, the server's endpoint: the SQL bootstrap of `pulumi up`
        connects through it (Stream Analytics and the cluster through their own)."""
        if args.private_link is not None:
            private_endpoint(
                f"{name}-server",
                parent=self,
                placement=args.placement,
                link=args.private_link,
                resource_id=self.server.id,
                group_id="sqlServer",
            )

    def _firewall(self, name: str, args: SensorDatabaseArgs) -> list[sql.FirewallRule]:
        """The "Allow Azure services" rule for Stream Analytics, then one rule per configured client
        range (numbered in config order, so a rule's name follows its position). None with
        private networking: Stream Analytics then writes through its cluster's private
        endpoint."""
        if args.private_link is not None:
            return []
        rules = [("allow-azure-services", *ALLOW_AZURE_SERVICES)] + [
            (f"client-{i}", start, end) for i, (start, end) in enumerate(args.firewall_ranges)
        ]
        return [
            sql.FirewallRule(
                f"{name}-{rule_name}",
                firewall_rule_name=rule_name,
                server_name=self.server.name,
                resource_group_name=args.placement.resource_group_name,
                start_ip_address=start,
                end_ip_address=end,
                opts=child_options(self),
            )
            for rule_name, start, end in rules
        ]

    def _database(self, name: str, args: SensorDatabaseArgs) -> sql.Database:
        """The database; a serverless SKU pauses after the configured idle minutes and resumes
        on the next connection."""
        place = args.placement
        serverless = {}
        if args.serverless:
            serverless = {
                "auto_pause_delay": args.auto_pause_delay_minutes,
                "min_capacity": SERVERLESS_MIN_CAPACITY,
            }
        return sql.Database(
            f"{name}-database",
            database_name=DATABASE_NAME,
            server_name=self.server.name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=sql.SkuArgs(**sql_sku_parts(args.sku)),
            max_size_bytes=args.max_size_gb * 1024**3,
            zone_redundant=args.zone_redundant,
            requested_backup_storage_redundancy=args.backup_storage_redundancy,
            tags=dict(place.tags),
            opts=child_options(self, protect=args.protect),
            **serverless,
        )
