"""What every component shares: where resources go, their tags, child resource options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi


def standard_tags(project: str, stack: str) -> dict[str, str]:
    """Tags every taggable resource carries (cost and ownership reports group by them)."""
    return {"project": project, "environment": stack, "managed-by": "pulumi"}


@dataclass(frozen=True)
class Placement:
    """Resource group, region and tags shared by the resources of one stack."""

    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)


def child_options(
    parent: pulumi.Resource,
    *,
    protect: bool = False,
    depends_on: Sequence[pulumi.Resource] | None = None,
    hooks: pulumi.ResourceHookBinding | None = None,
) -> pulumi.ResourceOptions:
    """Options of a component's child: parented to the component, optionally protected.

    `protect` goes on data-holding resources in stacks that set `protectData` (prod):
    `pulumi destroy` or a replacing change then stops instead of deleting data. `hooks` binds
    resource hooks (e.g. stop a Stream Analytics job before its update).
    """
    return pulumi.ResourceOptions(
        parent=parent,
        protect=protect,
        depends_on=list(depends_on) if depends_on else None,
        hooks=hooks,
    )
