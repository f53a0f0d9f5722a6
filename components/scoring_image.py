"""ScoringImage: the container registry (no admin user, no anonymous pull) and the scoring
image built from `scoring/` with `docker/Dockerfile`, pushed with an Entra-based login."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker_build as docker_build
from pulumi_azure_native import containerregistry

from components.network import PrivateLink, private_endpoint
from components.shared import registry_auth
from components.shared.diagnostics import send_to_log_analytics
from components.shared.placement import Placement, child_options

# Relative to the project directory (where Pulumi runs the program).
BUILD_CONTEXT = "scoring"
DOCKERFILE = "docker/Dockerfile"
PLATFORM = "linux/amd64"  # what AmlCompute nodes run


@dataclass
class ScoringImageArgs:
    placement: Placement
    registry_name: pulumi.Input[str]
    sku: str
    zone_redundant: bool
    repository: str
    tag: str
    access_token: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    log_analytics_workspace_id: pulumi.Input[str]
    # Private networking (Premium only): the push and every pull go through private endpoints.
    private_link: PrivateLink | None = None
    protect: bool = False


class ScoringImage(pulumi.ComponentResource):
    """Registry + image; `image_ref` is `<login server>/<repository>@sha256:...`."""

    registry_name: pulumi.Output[str]
    registry_id: pulumi.Output[str]
    login_server: pulumi.Output[str]
    image_ref: pulumi.Output[str]

    def __init__(
        self, name: str, args: ScoringImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:ScoringImage", name, None, opts)
        place = args.placement
        self.registry = containerregistry.Registry(
            f"{name}-registry",
            registry_name=args.registry_name,
            resource_group_name=place.resource_group_name,
            location=place.location,
            sku=containerregistry.SkuArgs(name=args.sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access="Enabled" if args.private_link is None else "Disabled",
            zone_redundancy="Enabled" if args.zone_redundant else "Disabled",
            tags=dict(place.tags),
            opts=child_options(self, protect=args.protect),
        )
        self.registry_name = self.registry.name
        self.registry_id = self.registry.id
        self.login_server = self.registry.login_server
        push_after = self._private_endpoint(name, args)

        self.image = docker_build.Image(
            f"{name}-image",
            context=docker_build.BuildContextArgs(location=BUILD_CONTEXT),
            dockerfile=docker_build.DockerfileArgs(location=DOCKERFILE),
            platforms=[PLATFORM],
            tags=[pulumi.Output.concat(self.login_server, "/", args.repository, ":", args.tag)],
            push=True,
            registries=[
                docker_build.RegistryArgs(
                    address=self.login_server,
                    username=registry_auth.REFRESH_TOKEN_USERNAME,
                    password=registry_auth.registry_password(
                        self.login_server, args.tenant_id, args.access_token
                    ),
                )
            ],
            opts=child_options(self, depends_on=push_after),
        )
        # `ref` is the pushed tag with the build's digest: what jobs must run, immutably.
        self.image_ref = self.image.ref
        send_to_log_analytics(
            f"{name}-registry-diagnostics",
            resource_id=self.registry.id,
            workspace_id=args.log_analytics_workspace_id,
            parent=self,
        )
        self.register_outputs({"loginServer": self.login_server, "imageRef": self.image_ref})

    def _private_endpoint(self, name: str, args: ScoringImageArgs) -> list[pulumi.Resource]:
        """With private networking, the registry's endpoint (its DNS zone group, returned so
        that the push waits for it: the push goes through the endpoint)."""
        if args.private_link is None:
            return []
        return [
            private_endpoint(
                f"{name}-registry",
                parent=self,
                placement=args.placement,
                link=args.private_link,
                resource_id=self.registry.id,
                group_id="registry",
            )
        ]
