"""The committed plan snapshots match what the program declares today.

A pull request that changes the infrastructure changes tests/snapshots/plan-<stack>.json,
so the review shows the difference resource by resource. When the change is intended:

    python -m components.offline.plan --stack <stack> --update-snapshot
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.offline.plan import REFRESH_HINT, plan_in_subprocess, plan_json

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"


def _differences(old: dict, new: dict) -> list[str]:
    def index(plan: dict) -> dict:
        return {(r["type"], r["name"]): r for r in plan.get("resources", [])}

    before, after = index(old), index(new)
    lines = [f"+ {n} ({t})" for t, n in sorted(after.keys() - before.keys())]
    lines += [f"- {n} ({t})" for t, n in sorted(before.keys() - after.keys())]
    lines += [
        f"~ {n} ({t})"
        for t, n in sorted(before.keys() & after.keys())
        if before[(t, n)] != after[(t, n)]
    ]
    if old.get("outputs") != new.get("outputs"):
        lines.append("~ outputs")
    return lines


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_snapshot_is_current(stack: str) -> None:
    path = SNAPSHOTS / f"plan-{stack}.json"
    hint = REFRESH_HINT.format(stack=stack)
    assert path.exists(), f"{path.name} is missing: run `{hint}`"
    current = plan_in_subprocess(stack)
    committed = json.loads(path.read_text(encoding="utf-8"))
    changes = _differences(committed, current)
    assert not changes and plan_json(committed) == plan_json(current), (
        f"the {stack} plan changed; if intended, run `{hint}` and commit the diff:\n"
        + "\n".join(changes[:40])
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_snapshot_is_sorted_and_stable(stack: str) -> None:
    plan = json.loads((SNAPSHOTS / f"plan-{stack}.json").read_text(encoding="utf-8"))
    keys = [(r["name"], r["type"]) for r in plan["resources"]]
    assert keys == sorted(keys), "resources must be sorted by name and type"
    text = json.dumps(plan)
    assert "/work/" not in text and "/tmp/" not in text, "no machine paths in the plan"
    assert "04da6b54-80e4-46f7-96ec-b56ff0331ba9" not in text, "unknowns must be markers"
