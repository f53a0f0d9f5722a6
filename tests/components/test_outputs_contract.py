"""The outputs contract: a JSON Schema both stacks' outputs satisfy, a semantic version, and a
history in which removing or renaming an output without a major version bump fails."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from components.offline import outputs_contract
from components.offline.outputs_contract import check_contract, released_schemas, required_bump
from components.offline.plan import plan_in_subprocess
from components.shared import stack_outputs
from components.shared.stack_outputs import CONTRACT_VERSION_OUTPUT, OUTPUTS_CONTRACT_VERSION

# the versions one step after the current contract's, whatever it is now
_MAJOR, _MINOR, _PATCH = (int(part) for part in OUTPUTS_CONTRACT_VERSION.split("."))
NEXT_MINOR, NEXT_PATCH = f"{_MAJOR}.{_MINOR + 1}.0", f"{_MAJOR}.{_MINOR}.{_PATCH + 1}"
NEXT_MAJOR = f"{_MAJOR + 1}.0.0"

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "contracts" / "stack-outputs.schema.json"
REFRESH = "python -m components.offline.outputs_contract --write"


def committed_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validator(schema: dict | None = None) -> jsonschema.Draft202012Validator:
    schema = schema or committed_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors_of(document: dict, schema: dict | None = None) -> list[str]:
    return [e.message for e in validator(schema).iter_errors(document)]


def published_document(plan: dict) -> dict:
    (blob,) = [r for r in plan["resources"] if r["type"].endswith("batchscore:PublishedBlob")]
    return json.loads(blob["inputs"]["content"])


# --- the schema -------------------------------------------------------------------------------
def test_the_committed_schema_is_generated_from_the_code() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == stack_outputs.schema_text(
        stack_outputs.contract_schema()
    ), f"contracts/stack-outputs.schema.json is stale: run `{REFRESH}`"


def test_the_schema_names_every_output_and_the_version() -> None:
    schema = committed_schema()
    assert schema["required"] == list(stack_outputs.STACK_OUTPUTS)
    assert schema["x-contract-version"] == OUTPUTS_CONTRACT_VERSION
    assert CONTRACT_VERSION_OUTPUT in schema["required"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_both_stacks_outputs_validate(stack: str) -> None:
    plan = plan_in_subprocess(stack)
    assert errors_of(plan["outputs"]) == []
    assert plan["outputs"][CONTRACT_VERSION_OUTPUT] == OUTPUTS_CONTRACT_VERSION


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_published_document_is_exactly_the_outputs(stack: str) -> None:
    plan = plan_in_subprocess(stack)
    document = published_document(plan)
    assert document == plan["outputs"]
    assert errors_of(document) == []
    assert "[secret]" not in json.dumps(document)


def test_the_schema_refuses_what_a_consumer_could_not_use() -> None:
    good = plan_in_subprocess("dev")["outputs"]
    assert errors_of(good) == []
    missing = {k: v for k, v in good.items() if k != "streamJobName"}
    assert errors_of(missing) == ["'streamJobName' is a required property"]
    http = {**good, "predictionsContainerUrl": good["predictionsContainerUrl"].replace("s:", ":")}
    assert len(errors_of(http)) == 1
    other_major = {**good, CONTRACT_VERSION_OUTPUT: "2.0.0"}
    assert len(errors_of(other_major)) == 1
    by_tag = {**good, "scoringImageRef": good["scoringImageRef"].split("@")[0]}
    assert len(errors_of(by_tag)) == 1
    # New outputs of a later minor version do not break a consumer holding this schema.
    assert errors_of({**good, "someFutureOutput": "x"}) == []


# --- the history ------------------------------------------------------------------------------
def test_the_released_history_is_consistent() -> None:
    assert check_contract(stack_outputs.contract_schema(), released_schemas()) == []


def _schema_with(monkeypatch, outputs: dict[str, str], version: str) -> dict:
    monkeypatch.setattr(stack_outputs, "STACK_OUTPUTS", outputs)
    monkeypatch.setattr(stack_outputs, "OUTPUTS_CONTRACT_VERSION", version)
    return stack_outputs.contract_schema()


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in stack_outputs.STACK_OUTPUTS.items() if k != name}


def _renamed(old: str, new: str) -> dict[str, str]:
    return {(new if k == old else k): v for k, v in stack_outputs.STACK_OUTPUTS.items()}


@pytest.mark.parametrize("version", [OUTPUTS_CONTRACT_VERSION, NEXT_MINOR, NEXT_PATCH])
def test_removing_an_output_without_a_major_bump_fails(monkeypatch, version: str) -> None:
    schema = _schema_with(monkeypatch, _without("streamJobName"), version)
    problems = check_contract(schema, released_schemas())
    assert any("output streamJobName was removed" in p and "major" in p for p in problems), problems


def test_renaming_an_output_without_a_major_bump_fails(monkeypatch) -> None:
    schema = _schema_with(monkeypatch, _renamed("streamJobName", "streamJobId"), NEXT_MINOR)
    problems = check_contract(schema, released_schemas())
    assert any(
        "streamJobName was removed (renamed to one of ['streamJobId']?)" in p for p in problems
    )


def test_removing_an_output_with_a_major_bump_recorded_passes(monkeypatch) -> None:
    schema = _schema_with(monkeypatch, _without("streamJobName"), NEXT_MAJOR)
    history = [*released_schemas(), ((_MAJOR + 1, 0, 0), copy.deepcopy(schema))]
    assert check_contract(schema, history) == []


def test_a_new_version_must_be_recorded(monkeypatch) -> None:
    schema = _schema_with(monkeypatch, _without("streamJobName"), NEXT_MAJOR)
    (problem,) = check_contract(schema, released_schemas())
    assert f"contracts/released/stack-outputs-{NEXT_MAJOR}.schema.json" in problem


def test_adding_an_output_needs_a_minor_bump(monkeypatch) -> None:
    added = {**stack_outputs.STACK_OUTPUTS, "predictionsDatastoreName": "Datastore."}
    unchanged_version = _schema_with(monkeypatch, added, OUTPUTS_CONTRACT_VERSION)
    (problem,) = check_contract(unchanged_version, released_schemas())
    assert f"changed but its version {OUTPUTS_CONTRACT_VERSION} did not" in problem
    assert "minor" in problem
    minor = _schema_with(monkeypatch, added, NEXT_MINOR)
    assert check_contract(minor, [*released_schemas(), ((_MAJOR, _MINOR + 1, 0), minor)]) == []


def test_a_changed_shape_is_a_major_change(monkeypatch) -> None:
    old = stack_outputs.contract_schema()
    patterns = {**stack_outputs.OUTPUT_PATTERNS, "eventHubName": "^hub-[a-z]+$"}
    monkeypatch.setattr(stack_outputs, "OUTPUT_PATTERNS", patterns)
    bump, reasons = required_bump(old, stack_outputs.contract_schema())
    assert bump == "major" and reasons == [
        "major: output eventHubName changed its shape (type or pattern)"
    ]


def test_a_description_change_is_a_patch(monkeypatch) -> None:
    old = stack_outputs.contract_schema()
    edited = {**stack_outputs.STACK_OUTPUTS, "eventHubName": "The hub."}
    new = _schema_with(monkeypatch, edited, NEXT_PATCH)
    assert required_bump(old, new)[0] == "patch"
    assert check_contract(new, [*released_schemas(), ((_MAJOR, _MINOR, _PATCH + 1), new)]) == []


def test_a_version_going_backwards_fails(monkeypatch) -> None:
    schema = _schema_with(monkeypatch, dict(stack_outputs.STACK_OUTPUTS), "0.9.0")
    assert any("went backwards" in p for p in check_contract(schema, released_schemas()))


def test_a_released_file_must_say_its_own_version(tmp_path: Path) -> None:
    schema = {**committed_schema(), "x-contract-version": "1.2.0"}
    (tmp_path / "stack-outputs-1.0.0.schema.json").write_text(json.dumps(schema))
    with pytest.raises(ValueError, match="declares x-contract-version"):
        released_schemas(tmp_path)


def test_the_check_command_reports_a_broken_contract(monkeypatch, capsys) -> None:
    monkeypatch.setattr(stack_outputs, "STACK_OUTPUTS", _without("streamJobName"))
    assert outputs_contract.main([]) == 1
    assert "streamJobName was removed" in capsys.readouterr().err
    monkeypatch.undo()
    assert outputs_contract.main([]) == 0
