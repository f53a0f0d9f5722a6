"""The consumer examples other teams start from (examples/consumer/): the stack publishes
stack-outputs.json with its own provider, a plain script reads it back from a real Blob
endpoint (Azurite), and a Pulumi program reads the stack through a StackReference (mocks)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pulumi
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from components.offline.plan import plan_in_subprocess
from components.providers import published_blob
from components.published_outputs import BLOB_NAME

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "consumer"
SCHEMA = ROOT / "contracts" / "stack-outputs.schema.json"
sys.path.insert(0, str(EXAMPLE))

import compatibility  # noqa: E402  (the example's own modules, found through the path above)
import consumer_stack  # noqa: E402
import read_outputs  # noqa: E402

ACCOUNT_URL = "https://stbatchscoredevdujh9a.blob.core.windows.net"


def published_inputs(stack: str = "dev") -> dict:
    """The inputs the stack gives its PublishedBlob (from the offline plan of `stack`)."""
    plan = plan_in_subprocess(stack)
    (blob,) = [r for r in plan["resources"] if r["type"].endswith("batchscore:PublishedBlob")]
    return {k: v for k, v in blob["inputs"].items() if not k.startswith("__")}


@pytest.fixture
def blob_endpoint(azurite, monkeypatch) -> BlobServiceClient:
    """Both sides (the stack's provider and the example script) talk to Azurite."""
    service = BlobServiceClient.from_connection_string(azurite)
    name = f"stack-outputs-{len(list(service.list_containers()))}"
    service.create_container(name)

    def local(_account: str, _container: str):
        client = ContainerClient.from_connection_string(azurite, name)
        return client, [client]

    monkeypatch.setattr(published_blob, "CONTAINER_CLIENT", local)
    monkeypatch.setattr(read_outputs, "CONTAINER_CLIENT", local)
    yield service.get_container_client(name)
    service.close()


def test_the_stack_publishes_and_the_script_reads_the_same_outputs(blob_endpoint, capsys):
    inputs = published_inputs()
    provider = published_blob.PublishedBlobProvider()
    created = provider.create(inputs)
    assert created.id == f"{ACCOUNT_URL}/stack-outputs/{BLOB_NAME}"
    properties = blob_endpoint.get_blob_client(BLOB_NAME).get_blob_properties()
    assert properties.content_settings.content_type == "application/json"

    assert read_outputs.main(["--account-url", ACCOUNT_URL, "--schema", str(SCHEMA)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == plan_in_subprocess("dev")["outputs"]

    assert read_outputs.main(["--account-url", ACCOUNT_URL, "--output", "eventHubName"]) == 0
    assert capsys.readouterr().out == "sensor-readings\n"


def test_an_update_replaces_the_document_and_delete_removes_it(blob_endpoint, capsys):
    provider = published_blob.PublishedBlobProvider()
    inputs = published_inputs()
    provider.create(inputs)
    newer = json.loads(inputs["content"]) | {"outputsContractVersion": "1.1.0", "newOne": "x"}
    provider.update("id", inputs, {**inputs, "content": json.dumps(newer)})
    assert read_outputs.read_outputs(ACCOUNT_URL, SCHEMA)["newOne"] == "x"

    provider.delete("id", inputs)
    provider.delete("id", inputs)  # already gone: still fine
    assert read_outputs.main(["--account-url", ACCOUNT_URL]) == 1
    assert capsys.readouterr().err == (
        f"error: {ACCOUNT_URL}/stack-outputs/stack-outputs.json does not exist: "
        "has the stack been deployed?\n"
    )


def test_another_major_version_stops_the_script(blob_endpoint, capsys):
    document = json.loads(published_inputs()["content"]) | {"outputsContractVersion": "2.0.0"}
    blob_endpoint.upload_blob(BLOB_NAME, json.dumps(document))
    assert read_outputs.main(["--account-url", ACCOUNT_URL]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "contract is 2.0.0, this consumer supports 1.x" in err


def test_a_document_off_the_schema_is_refused_naming_the_output(blob_endpoint, capsys):
    document = json.loads(published_inputs()["content"])
    del document["sqlServerFqdn"]
    blob_endpoint.upload_blob(BLOB_NAME, json.dumps(document))
    assert read_outputs.main(["--account-url", ACCOUNT_URL, "--schema", str(SCHEMA)]) == 1
    assert capsys.readouterr().err == (
        "error: not valid against stack-outputs.schema.json: (document): "
        "'sqlServerFqdn' is a required property\n"
    )


def test_script_usage_mistakes_exit_2(tmp_path, capsys):
    assert read_outputs.main(["--account-url", ACCOUNT_URL, "--schema", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith("error: --schema")
    with pytest.raises(SystemExit) as exit_info:
        read_outputs.main([])
    assert exit_info.value.code == 2


# --- the Pulumi program: a StackReference under mocks ----------------------------------------
class StackReferenceMocks(pulumi.runtime.Mocks):
    """Answers a StackReference read with the given stack's outputs, as the engine does."""

    def __init__(self, outputs: dict):
        self.outputs = outputs
        self.read: list[str] = []

    def new_resource(self, args):
        assert args.typ == "pulumi:pulumi:StackReference", args.typ
        self.read.append(args.resource_id)
        return args.resource_id, {
            "name": args.resource_id,
            "outputs": self.outputs,
            "secretOutputNames": [],
        }

    def call(self, args):
        raise NotImplementedError(args.token)


def _consume(outputs: dict) -> tuple[StackReferenceMocks, dict]:
    mocks = StackReferenceMocks(outputs)
    pulumi.runtime.set_mocks(mocks, project="batchscore-consumer", stack="dev", preview=False)
    values = consumer_stack.consume("acme/batchscore/dev")
    return mocks, values


@pulumi.runtime.test
def test_the_pulumi_consumer_reads_the_stack_outputs():
    outputs = plan_in_subprocess("dev")["outputs"]
    mocks, values = _consume(outputs)

    def check(resolved):
        assert mocks.read == ["acme/batchscore/dev"]
        assert resolved == {
            "batchscoreContract": outputs["outputsContractVersion"],
            "predictionsContainerUrl": outputs["predictionsContainerUrl"],
            "scoredPrefixUrl": outputs["predictionsContainerUrl"] + "/scored/",
            "mlWorkspaceId": outputs["mlWorkspaceId"],
        }

    return pulumi.Output.all(**values).apply(check)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("2.0.0", "contract is 2.0.0, this consumer supports 1.x"),
        ("one", "'one', not a version MAJOR.MINOR.PATCH"),
    ],
)
def test_the_pulumi_consumer_refuses_another_major_version(version, message):
    outputs = plan_in_subprocess("dev")["outputs"] | {"outputsContractVersion": version}

    @pulumi.runtime.test
    def run():
        _, values = _consume(outputs)
        return values["predictionsContainerUrl"]

    with pytest.raises(compatibility.IncompatibleContract, match=message):
        run()


def test_the_pulumi_consumer_is_a_pulumi_project():
    import yaml

    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert "batchscoreStack" in project["config"]
    pins = (EXAMPLE / "requirements.txt").read_text()
    platform = (ROOT / "requirements.txt").read_text()
    for line in pins.splitlines():
        if line and not line.startswith("#"):
            assert line in platform, f"{line}: the example pins what the stack is tested with"
