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
        place = args.placement
        self.server = sql.Server(
            f"{name}-server",
            server_name=args.server_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            version="12.0",
            minimal_tls_version="1.2",
            public_network_access="Enabled",
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
        self.server_name = self.server.name
        self.server_id = self.server.id
        self.server_fqdn = self.server.fully_qualified_domain_name

        rules = [("allow-azure-services", *ALLOW_AZURE_SERVICES)] + [
            (f"client-{i}", start, end) for i, (start, end) in enumerate(args.firewall_ranges)
        ]
        for rule_name, start, end in rules:
            sql.FirewallRule(
                f"{name}-{rule_name}",
                firewall_rule_name=rule_name,
                server_name=self.server.name,
                resource_group_name=place.resource_group_name,
                start_ip_address=start,
                end_ip_address=end,
                opts=child_options(self),
            )

        serverless = {}
        if args.serverless:  # pauses after the configured idle minutes, resumes on connect
            serverless = {
                "auto_pause_delay": args.auto_pause_delay_minutes,
                "min_capacity": SERVERLESS_MIN_CAPACITY,
            }
        self.database = sql.Database(
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
        self.database_name = self.database.name
        self.database_id = self.database.id
        send_to_log_analytics(
            f"{name}-database-diagnostics",
            resource_id=self.database.id,
            workspace_id=args.log_analytics_workspace_id,
            parent=self,
        )
        self.register_outputs({"serverFqdn": self.server_fqdn, "databaseName": self.database_name})
