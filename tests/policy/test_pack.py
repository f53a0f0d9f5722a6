"""The policy pack as the Pulumi CLI loads it: `PulumiPolicy.yaml` and `__main__.py`.

`PolicyPack(...)` starts a gRPC server and blocks, so the test runs the pack's
`__main__.py` the way the Python policy host does (`runpy.run_path` on the folder) with
`PolicyPack` replaced by a recorder.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pulumi_policy
import pytest
import yaml

from policy import rules

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policy"


@pytest.fixture
def recorded_pack(monkeypatch: pytest.MonkeyPatch) -> dict:
    recorded: dict = {}

    def record(**kwargs):
        recorded.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", record)
    # The host's run_path puts the pack folder first on sys.path: its modules are top level.
    for name in ("policies", "rules"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    runpy.run_path(str(PACK), run_name="__main__")
    for name in ("policies", "rules"):
        sys.modules.pop(name, None)
    return recorded


def test_main_builds_a_mandatory_pack_with_every_rule(recorded_pack: dict) -> None:
    assert re.fullmatch(r"[a-zA-Z0-9-_.]{1,100}", recorded_pack["name"])
    assert recorded_pack["enforcement_level"] is pulumi_policy.EnforcementLevel.MANDATORY
    policies = recorded_pack["policies"]
    assert [p.name for p in policies] == [rule.name for rule in rules.RULES]
    assert all(isinstance(p, pulumi_policy.ResourceValidationPolicy) for p in policies)


def test_pulumi_policy_yaml_declares_a_python_pack() -> None:
    spec = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert spec["runtime"]["name"] == "python"
    assert spec["runtime"]["options"]["virtualenv"] == ".venv"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(spec["version"]))


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[name.strip().lower()] = version.strip()
    return found


def test_pack_requirements_are_pinned_like_the_project() -> None:
    pack, project = pins(PACK / "requirements.txt"), pins(ROOT / "requirements.txt")
    assert {"pulumi", "pulumi-policy"} <= pack.keys()
    for name, version in pack.items():
        assert project.get(name) == version, f"policy/requirements.txt pins {name}=={version}"


def test_rules_module_imports_no_pulumi() -> None:
    """The rules stay pure: importable and testable without any Pulumi SDK."""
    source = (PACK / "rules.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+pulumi", source, re.MULTILINE)
