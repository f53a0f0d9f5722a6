"""The Network component and `private_endpoint` under recording Pulumi mocks: what they declare
for any caller, apart from the prod plan (tests/components/test_stack_program.py)."""

from __future__ import annotations

import pulumi
import pytest

from components.network import (
    ENDPOINT_SUBNET,
    PRIVATE_DNS_ZONES,
    RUNNER_SUBNET,
    Network,
    NetworkArgs,
    PrivateLink,
    private_endpoint,
)
from components.shared.placement import Placement

PLACE = Placement("rg-unit", "westeurope", {"project": "batchscore", "environment": "unit"})
SUBNETS = {ENDPOINT_SUBNET: "10.62.0.0/24", RUNNER_SUBNET: "10.62.1.0/24"}


def of_type(mocks, token: str) -> dict[str, dict]:
    return {r.name: r for r in mocks.resources if r.typ == token}


@pulumi.runtime.test
def test_network_declares_the_vnet_its_subnets_and_every_zone_linked(mocks):
    network = Network("network", NetworkArgs(PLACE, "10.62.0.0/23", subnets=SUBNETS))

    def check(_):
        (vnet,) = of_type(mocks, "azure-native:network:VirtualNetwork").values()
        assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.62.0.0/23"]}
        assert "subnets" not in vnet.inputs, "inline subnets would fight the Subnet resources"
        subnets = of_type(mocks, "azure-native:network:Subnet")
        assert {n: s.inputs["addressPrefix"] for n, s in subnets.items()} == {
            "network-private-endpoints": "10.62.0.0/24",
            "network-deploy-runner": "10.62.1.0/24",
        }
        assert subnets["network-private-endpoints"].inputs["defaultOutboundAccess"] is False
        assert "defaultOutboundAccess" not in subnets["network-deploy-runner"].inputs
        zones = of_type(mocks, "azure-native:privatedns:PrivateZone")
        wanted = {zone for group in PRIVATE_DNS_ZONES.values() for zone in group}
        assert {z.inputs["privateZoneName"] for z in zones.values()} == wanted
        assert all(z.inputs["location"] == "global" for z in zones.values())
        links = of_type(mocks, "azure-native:privatedns:VirtualNetworkLink")
        assert len(links) == len(wanted)
        assert all(link.inputs["registrationEnabled"] is False for link in links.values())

    # Checked once every link exists: a link is declared when its zone's name is known, so
    # waiting for the VNet and subnets alone raced it (9 of 10 links, now and then).
    links = [link.id for link in network.zone_links.values()]
    return pulumi.Output.all(network.vnet_id, *network.subnet_ids.values(), *links).apply(check)


@pulumi.runtime.test
def test_a_private_endpoint_registers_in_each_zone_of_its_sub_resource(mocks):
    link = PrivateLink(
        "subnet-id", {zone: f"zone-{zone}" for zone in PRIVATE_DNS_ZONES["amlworkspace"]}
    )
    parent = pulumi.ComponentResource("batchscore:index:Thing", "ml")
    group = private_endpoint(
        "ml-workspace", parent=parent, placement=PLACE, link=link, resource_id="ws-id",
        group_id="amlworkspace",
    )  # fmt: skip

    def check(_):
        (endpoint,) = of_type(mocks, "azure-native:network:PrivateEndpoint").values()
        assert endpoint.name == "ml-workspace-endpoint"
        assert endpoint.inputs["subnet"]["id"] == "subnet-id"
        (connection,) = endpoint.inputs["privateLinkServiceConnections"]
        assert connection["privateLinkServiceId"] == "ws-id"
        assert connection["groupIds"] == ["amlworkspace"]
        (zone_group,) = of_type(mocks, "azure-native:network:PrivateDnsZoneGroup").values()
        assert {c["privateDnsZoneId"] for c in zone_group.inputs["privateDnsZoneConfigs"]} == {
            "zone-privatelink.api.azureml.ms",
            "zone-privatelink.notebooks.azure.net",
        }

    return group.id.apply(check)


def test_an_unknown_sub_resource_is_refused_before_anything_is_declared(mocks):
    parent = pulumi.ComponentResource("batchscore:index:Thing", "x")
    with pytest.raises(ValueError, match="no private DNS zone known for sub-resource 'dfs'"):
        private_endpoint(
            "x-dfs", parent=parent, placement=PLACE, link=PrivateLink("s", {}),
            resource_id="id", group_id="dfs",
        )  # fmt: skip
