"""Network: the stack's VNet, private DNS and the private endpoints of its services (config
`networkIsolation`; docs/networking.md has the diagram).

What runs where:

* **Private endpoints** of storage (blob, file, queue, table), Key Vault, the registry, SQL,
  Event Hubs and the ML workspace sit in the `private-endpoints` subnet, each with its private
  DNS zone(s) ("Azure Private Endpoint private DNS zone values", learn.microsoft.com/azure/
  private-link/private-endpoint-dns), and every zone is linked to the VNet. Whoever resolves
  names through the VNet (the deployment runner, peered networks, a VPN) reaches the services
  on private addresses; their public network access is off.
* **The deployment runner** (`deploy-runner` subnet) is where `pulumi up` runs once the stack
  is private: the SQL bootstrap, the upload of the scoring components' code, the Event Hubs
  Capture access check, the image push and the Azure ML registrations are data-plane calls
  that must reach the private endpoints. `batchscore preflight` checks that line of sight.
* The ML workspace's compute is not here: it runs in the workspace's *managed* network with
  its own outbound private endpoints (components/ml_workspace.py). Stream Analytics runs on a
  dedicated cluster with managed private endpoints (components/stream_processing.py).

Subnets are separate resources, created one after another (Azure refuses concurrent changes
of one VNet's subnets); the VNet leaves out `subnets`, which API 2023-11-01 and later read as
"keep the existing subnets" (pulumi-azure-native#611, Azure/bicep-types-az#1687).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network, privatedns

from components.shared.placement import Placement, child_options

ENDPOINT_SUBNET = "private-endpoints"
RUNNER_SUBNET = "deploy-runner"

# Private-link sub-resource (group id) -> the private DNS zones its endpoint registers in
# (public cloud), from "Azure Private Endpoint private DNS zone values".
PRIVATE_DNS_ZONES: dict[str, tuple[str, ...]] = {
    "blob": ("privatelink.blob.core.windows.net",),
    "file": ("privatelink.file.core.windows.net",),
    "queue": ("privatelink.queue.core.windows.net",),
    "table": ("privatelink.table.core.windows.net",),
    "vault": ("privatelink.vaultcore.azure.net",),
    "registry": ("privatelink.azurecr.io",),
    "sqlServer": ("privatelink.database.windows.net",),
    "namespace": ("privatelink.servicebus.windows.net",),
    "amlworkspace": ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"),
}


@dataclass(frozen=True)
class PrivateLink:
    """Where a component puts its private endpoints: the endpoints subnet and the private DNS
    zones (zone name -> zone id), handed from :class:`Network` to the components."""

    subnet_id: pulumi.Input[str]
    zone_ids: Mapping[str, pulumi.Input[str]]


@dataclass
class NetworkArgs:
    placement: Placement
    address_space: str
    subnets: Mapping[str, str]  # subnet name -> address prefix (StackConfig.network_subnets)


class Network(pulumi.ComponentResource):
    """VNet + subnets and every private DNS zone of PRIVATE_DNS_ZONES, linked to the VNet.

    The private endpoints themselves belong to the components whose service they expose
    (:func:`private_endpoint`), so that what must wait for an endpoint (the deployer's storage
    probe, the image push) can depend on it inside its own component.
    """

    vnet_id: pulumi.Output[str]
    subnet_ids: dict[str, pulumi.Output[str]]
    zone_links: dict[str, privatedns.VirtualNetworkLink]  # zone name -> its link to the VNet
    link: PrivateLink

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:Network", name, None, opts)
        self.vnet = self._vnet(name, args)
        self.vnet_id = self.vnet.id
        self.subnets = self._subnets(name, args)
        self.subnet_ids = {k: s.id for k, s in self.subnets.items()}
        self.zones = self._dns_zones(name, args)
        self.zone_links = self._zone_links(name, args)
        self.link = PrivateLink(
            subnet_id=self.subnets[ENDPOINT_SUBNET].id,
            zone_ids={zone: z.id for zone, z in self.zones.items()},
        )
        self.register_outputs({"vnetId": self.vnet_id, "subnetIds": self.subnet_ids})

    def _vnet(self, name: str, args: NetworkArgs) -> network.VirtualNetwork:
        place = args.placement
        return network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=place.resource_group_name,
            location=place.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=dict(place.tags),
            opts=child_options(self),
        )

    def _subnets(self, name: str, args: NetworkArgs) -> dict[str, network.Subnet]:
        """The subnets, each after the one before it. The endpoints subnet has no default
        outbound internet access (nothing in it starts a connection); the runner's subnet
        keeps Azure's default, since a runner must reach its CI service and the image's base
        registry: give it a NAT gateway or your egress firewall (docs/networking.md)."""
        subnets: dict[str, network.Subnet] = {}
        previous: list[pulumi.Resource] = []
        for subnet, prefix in args.subnets.items():
            subnets[subnet] = network.Subnet(
                f"{name}-{subnet}",
                subnet_name=subnet,
                virtual_network_name=self.vnet.name,
                resource_group_name=args.placement.resource_group_name,
                address_prefix=prefix,
                default_outbound_access=False if subnet == ENDPOINT_SUBNET else None,
                # Azure's default, as Azure Verified Modules' private ML workspace example sets it
                # (avm-res-machinelearningservices-workspace, examples/private_managed_vnet):
                # no NSG or route table of ours applies to the endpoints.
                private_endpoint_network_policies="Disabled",
                opts=child_options(self, depends_on=previous),
            )
            previous = [subnets[subnet]]
        return subnets

    def _dns_zones(self, name: str, args: NetworkArgs) -> dict[str, privatedns.PrivateZone]:
        """Every private zone a service of the stack registers in."""
        place = args.placement
        wanted = sorted({zone for zones in PRIVATE_DNS_ZONES.values() for zone in zones})
        return {
            zone: privatedns.PrivateZone(
                f"{name}-zone-{_zone_label(zone)}",
                private_zone_name=zone,
                resource_group_name=place.resource_group_name,
                location="global",
                tags=dict(place.tags),
                opts=child_options(self),
            )
            for zone in wanted
        }

    def _zone_links(self, name: str, args: NetworkArgs) -> dict[str, privatedns.VirtualNetworkLink]:
        """Each zone linked to the VNet (resolution only: no VM registers its own name)."""
        place = args.placement
        return {
            zone: privatedns.VirtualNetworkLink(
                f"{name}-zone-{_zone_label(zone)}-link",
                private_zone_name=private_zone.name,
                resource_group_name=place.resource_group_name,
                location="global",
                virtual_network=privatedns.SubResourceArgs(id=self.vnet.id),
                registration_enabled=False,
                tags=dict(place.tags),
                opts=child_options(self),
            )
            for zone, private_zone in self.zones.items()
        }


def _zone_label(zone: str) -> str:
    """A zone's part of its resources' names: privatelink.blob.core.windows.net -> blob-core-
    windows-net."""
    return zone.removeprefix("privatelink.").replace(".", "-")


def private_endpoint(
    name: str,
    *,
    parent: pulumi.Resource,
    placement: Placement,
    link: PrivateLink,
    resource_id: pulumi.Input[str],
    group_id: str,
) -> network.PrivateDnsZoneGroup:
    """A private endpoint of `resource_id`'s sub-resource `group_id` in the endpoints subnet,
    and its DNS zone group, which writes the endpoint's A records into the zone(s) of
    PRIVATE_DNS_ZONES. Returns the zone group: once it exists, the name resolves privately,
    so data-plane calls through the endpoint depend on it."""
    if group_id not in PRIVATE_DNS_ZONES:  # a programming error, never the user's input
        raise ValueError(f"no private DNS zone known for sub-resource {group_id!r}")
    endpoint = network.PrivateEndpoint(
        f"{name}-endpoint",
        resource_group_name=placement.resource_group_name,
        location=placement.location,
        subnet=network.SubnetArgs(id=link.subnet_id),
        private_link_service_connections=[
            network.PrivateLinkServiceConnectionArgs(
                name=name, private_link_service_id=resource_id, group_ids=[group_id]
            )
        ],
        tags=dict(placement.tags),
        opts=child_options(parent),
    )
    return network.PrivateDnsZoneGroup(
        f"{name}-endpoint-dns",
        private_dns_zone_group_name="default",
        private_endpoint_name=endpoint.name,
        resource_group_name=placement.resource_group_name,
        private_dns_zone_configs=[
            network.PrivateDnsZoneConfigArgs(
                name=zone.replace(".", "-"), private_dns_zone_id=link.zone_ids[zone]
            )
            for zone in PRIVATE_DNS_ZONES[group_id]
        ],
        opts=child_options(parent),
    )
