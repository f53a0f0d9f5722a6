"""The roles the preflight expects a conditional role writer to allow (STACK_ROLES) are exactly
the roles both stacks assign (their committed plans, which test_plan_snapshot holds to the
program): a new role assignment cannot slip past the preflight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.shared.roles import ROLE_IDS, STACK_ROLES

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_roles_are_the_roles_the_plan_assigns(stack: str) -> None:
    plan = json.loads((SNAPSHOTS / f"plan-{stack}.json").read_text(encoding="utf-8"))
    assigned = {
        r["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1]
        for r in plan["resources"]
        if r["type"] == "azure-native:authorization:RoleAssignment"
    }
    names = {role_id: name for name, role_id in ROLE_IDS.items()}
    assert {names.get(i, i) for i in assigned} == set(STACK_ROLES)
