"""Generations of a model store in a Blob container, against Azurite (a real Blob endpoint):
the same lifecycle as on a folder, the manifest switched in one upload, and the command line's
history / rollback / pin on a container."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from batchscore.cli import main
from batchscore.cloud.blob_generations import BlobFiles, blob_generations
from batchscore.cloud.blob_sync import container_client
from tests.scoring.models.test_generations import check_lifecycle, trained


def _container(azurite: str) -> str:
    name = f"models-{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite).create_container(name)
    return name


def _served(azurite: str, container: str, prefix: str = "store") -> dict:
    client = BlobServiceClient.from_connection_string(azurite).get_container_client(container)
    manifest = json.loads(client.download_blob(f"{prefix}/manifest.json").readall())
    return {(e["device"], e["sensor"]): e["version"] for e in manifest["models"]}


def test_lifecycle_on_blob_storage(azurite) -> None:
    name = _container(azurite)
    with container_client(name, connection_string=azurite) as container:
        generations = blob_generations(container, "store")
        check_lifecycle(generations, lambda: _served(azurite, name))
        names = BlobFiles(container, "store").names()
    assert "store/manifest.json" not in names and "manifest.json" in names, "relative names"
    assert "generations/000002/manifest.json" in names
    assert "models.pack.arrow" not in names, "no pack of another manifest is left at the root"


def test_keep_n_deletes_blobs_no_generation_names(azurite) -> None:
    name = _container(azurite)
    with container_client(name, connection_string=azurite) as container:
        generations = blob_generations(container, "store", keep=1)
        first, files = trained(1)
        generations.commit(first, files)
        generations.commit(*trained(2))
        names = BlobFiles(container, "store").names()
    assert not [n for n in names if n.startswith("generations/000001/")]
    assert not {e["file"] for e in first.values()} & set(names)


def test_rollback_of_a_damaged_generation_switches_nothing(azurite) -> None:
    name = _container(azurite)
    with container_client(name, connection_string=azurite) as container:
        generations = blob_generations(container, "store")
        first, files = trained(1)
        generations.commit(first, files)
        generations.commit(*trained(2))
        container.delete_blob(f"store/{first[('dev-1', 'temp')]['file']}")
        before = _served(azurite, name)
        with pytest.raises(Exception, match="dev-1.*is missing"):
            generations.rollback(1)
    assert _served(azurite, name) == before


def test_command_line_history_rollback_pin_on_a_container(azurite, capsys) -> None:
    name = _container(azurite)
    with container_client(name, connection_string=azurite) as container:
        generations = blob_generations(container, "store")
        first, files = trained(1)
        generations.commit(first, files, counts={"added": 3})
        generations.commit(*trained(2), counts={"promoted": 3})
    where = ["--connection-string", azurite, "--container", name]
    capsys.readouterr()
    assert main(["models", "history", *where, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(h["generation"], h["pairs"], h["promoted"], h["current"]) for h in history] == [
        (1, 3, 0, False),
        (2, 3, 3, True),
    ]
    assert all(h["created"] for h in history)
    assert main(["models", "rollback", *where, "--to", "1"]) == 0
    assert _served(azurite, name) == {pair: e["version"] for pair, e in first.items()}
    assert main(["models", "pin", "dev-2", "temp", "--to", "2", *where]) == 0
    assert main(["models", "unpin", "dev-2", "temp", *where]) == 0
    assert main(["models", "unpin", "dev-2", "temp", *where]) == 2
    assert "is not pinned" in capsys.readouterr().err
    assert main(["models", "rollback", *where, "--to", "9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generation 9" in err and "kept generations: 1, 2" in err
