"""The offline plan's command line: bad config stops the program before any resource."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from components.offline.plan import render_tree, stack_config

ROOT = Path(__file__).resolve().parents[2]


def run_plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "components.offline.plan", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_invalid_config_fails_before_any_resource_naming_each_key() -> None:
    result = run_plan(
        "--stack", "dev", "--json-only",
        "--set", "clusterMinNodes=3", "--set", "clusterMaxNodes=2",
        "--set", "clusterIdleTimeBeforeScaleDown=2 minutes",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "clusterMinNodes: 3 is above clusterMaxNodes (2)" in result.stderr
    assert "clusterIdleTimeBeforeScaleDown: '2 minutes' is not a positive ISO-8601" in result.stderr
    assert "(0 resources declared)" in result.stderr
    assert "Traceback" not in result.stderr


def test_prod_without_an_alert_receiver_or_with_a_bad_one_is_refused_naming_the_key() -> None:
    nobody = run_plan("--stack", "prod", "--json-only", "--set", "alertEmails=[]")
    assert nobody.returncode == 2 and nobody.stdout == ""
    assert "alertEmails: stack 'prod' must name at least one alert receiver" in nobody.stderr
    assert "(0 resources declared)" in nobody.stderr
    typo = run_plan("--stack", "dev", "--json-only", "--set", 'alertEmails=["ops(at)corp"]')
    assert typo.returncode == 2
    assert "alertEmails[0]: 'ops(at)corp' is not an email address" in typo.stderr
    assert "Traceback" not in nobody.stderr + typo.stderr


def test_unknown_stack_and_unknown_key_are_usage_errors() -> None:
    missing = run_plan("--stack", "staging")
    assert missing.returncode == 2 and "no stack file Pulumi.staging.yaml" in missing.stderr
    unknown = run_plan("--stack", "dev", "--set", "clusterMaxNode=3")
    assert unknown.returncode == 2
    assert "--set clusterMaxNode: not a config key of Pulumi.yaml" in unknown.stderr


def test_stack_config_overlays_the_stack_file_on_the_defaults() -> None:
    dev, prod = stack_config("dev"), stack_config("prod")
    assert dev["batchscore:clusterMaxNodes"] == "2" and prod["batchscore:clusterMaxNodes"] == "8"
    assert dev["batchscore:scheduleCron"] == "0 * * * *"  # a Pulumi.yaml default
    assert prod["batchscore:protectData"] == "true"
    assert dev["batchscore:sqlFirewallIpRanges"] == "[]"
    overridden = stack_config("dev", {"clusterMaxNodes": "5"})
    assert overridden["batchscore:clusterMaxNodes"] == "5"


def test_the_tree_nests_children_under_their_component() -> None:
    plan = {
        "stack": "dev",
        "project": "batchscore",
        "outputs": {"a": "b"},
        "resources": [
            {"type": "t:x:C", "name": "c", "parent": None, "protect": False, "inputs": {}},
            {
                "type": "t:x:R",
                "name": "c-r",
                "parent": "c",
                "protect": True,
                "inputs": {"sku": {"name": "S"}, "location": "w"},
            },
        ],
    }
    lines = render_tree(plan).splitlines()
    assert lines[1] == "  t:x:C  c"
    assert lines[2] == "    t:x:R  c-r [protect]"
    assert lines[3] == '        sku={"name": "S"}'
    assert lines[-1] == "  a = b"
