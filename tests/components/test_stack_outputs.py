"""The stack outputs are a contract: exactly STACK_OUTPUTS, each documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.offline.plan import plan_in_subprocess
from components.shared.stack_outputs import (
    CONTRACT_VERSION_OUTPUT,
    STACK_OUTPUTS,
    export_stack_outputs,
)

ROOT = Path(__file__).resolve().parents[2]

# The contract other teams code against: changing it is a deliberate, reviewed act.
EXPECTED = {
    "outputsContractVersion",
    "resourceGroupName",
    "storageAccountName",
    "rawContainerUrl",
    "modelsContainerUrl",
    "predictionsContainerUrl",
    "eventHubsNamespaceFqdn",
    "eventHubName",
    "sqlServerFqdn",
    "sqlDatabaseName",
    "registryLoginServer",
    "scoringImageRef",
    "mlWorkspaceName",
    "mlWorkspaceId",
    "computeClusterName",
    "streamJobName",
    "scoringScheduleName",
    "trainingScheduleName",
}


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Deploying to Azure\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Deploying to Azure' section"
    return match.group(1)


def test_the_output_names_are_the_agreed_contract() -> None:
    assert set(STACK_OUTPUTS) == EXPECTED


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_exports_exactly_the_contract(stack: str) -> None:
    outputs = plan_in_subprocess(stack)["outputs"]
    assert set(outputs) == set(STACK_OUTPUTS), f"stack {stack} exports {sorted(outputs)}"
    assert all(outputs.values()), f"stack {stack}: empty outputs {outputs}"


def test_output_values_have_the_documented_shapes() -> None:
    out = plan_in_subprocess("dev")["outputs"]
    account = out["storageAccountName"]
    for container in ("raw", "models", "predictions"):
        assert out[f"{container}ContainerUrl"] == (
            f"https://{account}.blob.core.windows.net/{container}"
        )
    assert out["eventHubsNamespaceFqdn"].endswith(".servicebus.windows.net")
    assert out["eventHubName"] == "sensor-readings"
    assert out["sqlServerFqdn"].endswith(".database.windows.net")
    assert re.fullmatch(
        re.escape(out["registryLoginServer"]) + r"/batchscore/scoring:dev@sha256:[0-9a-f]{64}",
        out["scoringImageRef"],
    ), out["scoringImageRef"]
    assert out["mlWorkspaceId"].endswith("/workspaces/" + out["mlWorkspaceName"])
    assert out["mlWorkspaceId"].split("/")[4] == out["resourceGroupName"]


def test_every_output_is_documented_in_the_readme() -> None:
    section = readme_section()
    for name, description in STACK_OUTPUTS.items():
        assert f"| `{name}` | {description} |" in section, f"README lacks output {name}"


def test_exporting_anything_else_fails_naming_it() -> None:
    values = dict.fromkeys(set(STACK_OUTPUTS) - {CONTRACT_VERSION_OUTPUT}, "x")
    values.pop("streamJobName")
    values["adminPassword"] = "x"
    with pytest.raises(ValueError, match=r"missing \['streamJobName'\].*\['adminPassword'\]"):
        export_stack_outputs(values)


def test_the_contract_version_is_set_by_the_contract_not_by_the_program() -> None:
    values = dict.fromkeys(STACK_OUTPUTS, "x")
    with pytest.raises(ValueError, match=r"not declared \['outputsContractVersion'\]"):
        export_stack_outputs(values)
