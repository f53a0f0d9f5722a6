"""Checks of the stack outputs contract against the versions released before it.

``contracts/stack-outputs.schema.json`` is the contract of today (generated from
:mod:`components.shared.stack_outputs`); ``contracts/released/stack-outputs-<version>.schema.json``
keeps every released version as it was. The rules, semantic versioning for consumers:

* an output removed, renamed (one removed, one added) or given another shape (type or
  pattern) breaks consumers: the major version must go up;
* an output added is a minor version (old consumers ignore it);
* a schema that changed at all needs a new version, recorded in ``contracts/released/``.

    python -m components.offline.outputs_contract            # check (exit 0 ok, 1 broken)
    python -m components.offline.outputs_contract --write    # regenerate the current schema
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from components.shared import stack_outputs

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
CURRENT_SCHEMA = CONTRACTS / "stack-outputs.schema.json"
RELEASED = CONTRACTS / "released"
_RELEASED_NAME = re.compile(r"^stack-outputs-(\d+)\.(\d+)\.(\d+)\.schema\.json$")

Version = tuple[int, int, int]
BUMPS = ("none", "patch", "minor", "major")


def parse_version(text: str) -> Version:
    match = re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", text)
    if not match:
        raise ValueError(f"{text!r} is not a semantic version MAJOR.MINOR.PATCH")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def schema_version(schema: dict[str, Any]) -> Version:
    return parse_version(str(schema.get("x-contract-version", "")))


def _shape(prop: dict[str, Any]) -> tuple[Any, Any]:
    """What a consumer relies on about one output's value (descriptions may change freely)."""
    return prop.get("type"), prop.get("pattern")


def required_bump(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, list[str]]:
    """The smallest version bump from schema ``old`` to schema ``new``, and why."""
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    reasons: list[str] = []
    for name in sorted(old_required - new_required):
        added = sorted(new_required - old_required)
        hint = f" (renamed to one of {added}?)" if added else ""
        reasons.append(f"major: output {name} was removed{hint}")
    version_output = stack_outputs.CONTRACT_VERSION_OUTPUT
    for name in sorted(old_required & new_required - {version_output}):
        if _shape(old_props.get(name, {})) != _shape(new_props.get(name, {})):
            reasons.append(f"major: output {name} changed its shape (type or pattern)")
    if reasons:
        return "major", reasons
    added = sorted(new_required - old_required)
    if added:
        return "minor", [f"minor: output {name} was added" for name in added]
    if _without_version(old) != _without_version(new):
        return "patch", ["patch: descriptions or annotations changed"]
    return "none", []


def _without_version(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema minus what names its own version (compared across versions)."""
    return {k: v for k, v in schema.items() if k not in ("$id", "x-contract-version")}


def actual_bump(old: Version, new: Version) -> str:
    if new[0] != old[0]:
        return "major" if new[0] > old[0] else "backwards"
    if new[1] != old[1]:
        return "minor" if new[1] > old[1] else "backwards"
    if new[2] != old[2]:
        return "patch" if new[2] > old[2] else "backwards"
    return "none"


def check_step(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Problems of going from released schema ``old`` to ``new`` (empty when compatible)."""
    old_v, new_v = schema_version(old), schema_version(new)
    needed, reasons = required_bump(old, new)
    got = actual_bump(old_v, new_v)
    label = f"{'.'.join(map(str, old_v))} -> {'.'.join(map(str, new_v))}"
    if got == "backwards":
        return [f"{label}: the version went backwards"]
    if BUMPS.index(got) < BUMPS.index(needed):
        return [f"{label} is a {got} bump, but {reason}" for reason in reasons]
    return []


def released_schemas(folder: Path = RELEASED) -> list[tuple[Version, dict[str, Any]]]:
    """Every recorded release, oldest first; a file whose name and version disagree fails."""
    found = []
    for path in sorted(folder.glob("*.json")):
        match = _RELEASED_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: expected stack-outputs-<MAJOR.MINOR.PATCH>.schema.json")
        schema = json.loads(path.read_text(encoding="utf-8"))
        version = tuple(int(part) for part in match.groups())
        if schema_version(schema) != version:
            raise ValueError(f"{path.name} declares x-contract-version {schema_version(schema)}")
        found.append((version, schema))
    return sorted(found, key=lambda item: item[0])


def check_contract(
    current: dict[str, Any], released: list[tuple[Version, dict[str, Any]]]
) -> list[str]:
    """Problems of the current schema against the history (empty when all is well)."""
    if not released:
        return ["contracts/released/ holds no released contract"]
    problems: list[str] = []
    for (_, older), (_, newer) in zip(released, released[1:], strict=False):
        problems += check_step(older, newer)
    version = schema_version(current)
    recorded = dict(released)
    if version in recorded:
        if recorded[version] != current:
            needed, reasons = required_bump(recorded[version], current)
            problems.append(
                f"the contract changed but its version {'.'.join(map(str, version))} did not "
                f"({'; '.join(reasons)}): raise OUTPUTS_CONTRACT_VERSION (a {needed} bump at "
                "least) and record the new schema in contracts/released/"
            )
    else:
        problems += check_step(released[-1][1], current)
        problems.append(
            f"version {'.'.join(map(str, version))} is not recorded: copy "
            f"contracts/stack-outputs.schema.json to contracts/released/"
            f"stack-outputs-{'.'.join(map(str, version))}.schema.json"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.offline.outputs_contract",
        description="Check the stack outputs contract against its released versions.",
    )
    parser.add_argument(
        "--write", action="store_true", help="regenerate contracts/stack-outputs.schema.json"
    )
    args = parser.parse_args(argv)
    schema = stack_outputs.contract_schema()
    if args.write:
        CURRENT_SCHEMA.parent.mkdir(parents=True, exist_ok=True)
        CURRENT_SCHEMA.write_text(stack_outputs.schema_text(schema), encoding="utf-8")
        print(f"wrote {CURRENT_SCHEMA.relative_to(ROOT)}")
    try:
        problems = check_contract(schema, released_schemas())
    except ValueError as error:
        print(f"contracts/released: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
