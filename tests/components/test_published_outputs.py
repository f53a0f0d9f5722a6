"""PublishedOutputs: the outputs document as a blob, written with Entra ID, never a secret.
(The provider against a real Blob endpoint: tests/batchscore/test_example_consumer.py.)"""

from __future__ import annotations

import pulumi
import pytest

from components.providers import published_blob
from components.providers.published_blob import PublishedBlobProvider
from components.published_outputs import PublishedOutputs, PublishedOutputsArgs

INPUTS = {
    "accountName": "stacct",
    "containerName": "stack-outputs",
    "blobName": "stack-outputs.json",
    "content": '{"outputsContractVersion": "1.0.0"}\n',
    "contentType": "application/json",
}


def _published(document: pulumi.Output[str]) -> PublishedOutputs:
    return PublishedOutputs(
        "published-outputs",
        PublishedOutputsArgs(
            account_name="stacct", container_name="stack-outputs", document=document
        ),
    )


@pulumi.runtime.test
def test_the_document_becomes_the_blob_content(mocks):
    published = _published(pulumi.Output.from_input(INPUTS["content"]))

    def check(_url):  # the URL comes from the provider's create (mocks echo inputs)
        (blob,) = [r for r in mocks.resources if r.typ.endswith("batchscore:PublishedBlob")]
        assert {k: blob.inputs[k] for k in INPUTS} == INPUTS
        assert blob.custom and blob.name == "published-outputs-blob"

    return published.url.apply(check)


def test_a_secret_output_is_never_published(mocks):
    @pulumi.runtime.test
    def run():
        return _published(pulumi.Output.secret(INPUTS["content"])).url

    with pytest.raises(ValueError, match="a stack output became secret"):
        run()


def test_check_names_each_missing_input():
    result = PublishedBlobProvider().check({}, {**INPUTS, "content": "", "blobName": None})
    assert sorted(f.property for f in result.failures) == ["blobName", "content"]


def test_a_new_name_replaces_new_content_updates():
    provider = PublishedBlobProvider()
    moved = provider.diff("id", INPUTS, {**INPUTS, "containerName": "elsewhere"})
    assert moved.changes and moved.replaces == ["containerName"]
    edited = provider.diff("id", INPUTS, {**INPUTS, "content": "{}"})
    assert edited.changes and not edited.replaces
    assert not provider.diff("id", INPUTS, dict(INPUTS)).changes


def test_the_default_client_signs_in_with_entra_only(monkeypatch):
    """No key or SAS path: the client gets a token credential built inside the call."""
    built = []

    class Credential:
        def get_token(self, *scopes, **kwargs):  # pragma: no cover - never called offline
            raise AssertionError("no network here")

        def close(self):
            built.append("closed")

    monkeypatch.setattr(published_blob, "default_credential", Credential)
    client, closables = published_blob._entra_container("stacct", "stack-outputs")
    assert client.url == "https://stacct.blob.core.windows.net/stack-outputs"
    assert isinstance(client.credential, Credential)
    for item in closables:
        item.close()
    assert built == ["closed"]


def test_the_readme_tells_consumers_where_the_document_is_and_which_role_reads_it():
    import re
    from pathlib import Path

    from components.published_outputs import BLOB_NAME
    from components.storage import CONTAINERS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^### For other teams\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README.md has no '### For other teams' section"
    section = match.group(1)
    assert "stack-outputs" in CONTAINERS
    assert f".blob.core.windows.net/stack-outputs/{BLOB_NAME}`" in section
    assert "containers/stack-outputs" in section and '"Storage Blob Data Reader"' in section
    assert "contracts/stack-outputs.schema.json" in section
