"""Read-only helpers over an offline plan (`components.offline.plan`), for tests and reviews."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


def lookup(inputs: Mapping[str, Any], path: str, default: Any = _MISSING) -> Any:
    """The value at a dotted path (`properties.scaleSettings.maxNodeCount`)."""
    node: Any = inputs
    for key in path.split("."):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, Mapping) and key in node:
            node = node[key]
        elif default is _MISSING:
            raise KeyError(f"no {path!r} (stopped at {key!r})")
        else:
            return default
    return node


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    parent: str | None
    protect: bool
    inputs: Mapping[str, Any]
    id: str | None = None
    depends_on: tuple[str, ...] = ()
    hooks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ignore_changes: tuple[str, ...] = ()

    def get(self, path: str, default: Any = None) -> Any:
        return lookup(self.inputs, path, default)

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class PlanView:
    """The resources of one plan, found by type and logical name."""

    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.stack: str = plan["stack"]
        self.outputs: Mapping[str, Any] = plan.get("outputs", {})
        self.resources = [
            PlannedResource(
                r["type"],
                r["name"],
                r["parent"],
                r.get("protect", False),
                r["inputs"],
                r.get("id"),
                tuple(r.get("dependsOn", ())),
                {kind: tuple(names) for kind, names in r.get("hooks", {}).items()},
                tuple(r.get("ignoreChanges", ())),
            )
            for r in plan["resources"]
        ]

    def __iter__(self) -> Iterator[PlannedResource]:
        return iter(self.resources)

    def of_type(self, resource_type: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == resource_type]

    def one(self, resource_type: str, name: str | None = None) -> PlannedResource:
        found = [r for r in self.of_type(resource_type) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(resource_type)]
            raise AssertionError(
                f"stack {self.stack}: expected one {resource_type}"
                f"{f' named {name}' if name else ''}, found {names}"
            )
        return found[0]

    def children(self, parent: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.parent == parent]
