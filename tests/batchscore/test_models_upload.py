"""`batchscore models upload` against a real Blob endpoint: Azurite on 127.0.0.1.

Azurite comes from npm (package.json devDependencies; `make node_modules`). Without it the
tests are skipped on a laptop, naming the fix, but fail in CI (CI=true), where it must have
been installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient

from batchscore.cli import main
from batchscore.cloud.blob_sync import container_client, upload_store
from scoring.models.store import ModelStore
from tests.batchscore.conftest import DEV_KEY
from tests.fixtures.models import fitted_pipeline

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [("dev-001", "temperature"), ("dev-001", "vibration"), ("dev 002/ä", "temp.C")]


def _make_store(root: Path, pairs=PAIRS, seed: int = 0) -> ModelStore:
    store = ModelStore(root)
    rng = np.random.default_rng(seed)
    for device, sensor in pairs:
        values = rng.normal(20.0, 2.0, size=(60, 1))
        pipeline = fitted_pipeline(values, nu=0.05)
        store.save(
            device, sensor, pipeline, training_rows=60, params={"nu": 0.05}, write_manifest=False
        )
    store.write_manifest()
    return store


def _local_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _download_all(connection_string: str, container: str, prefix: str = "") -> dict[str, bytes]:
    service = BlobServiceClient.from_connection_string(connection_string)
    client = service.get_container_client(container)
    blobs = {}
    for blob in client.list_blobs(name_starts_with=prefix or None):
        name = blob.name[len(prefix) :] if prefix else blob.name
        blobs[name] = client.download_blob(blob.name).readall()
    return blobs


def _upload_cli(store: Path, cs: str, container: str, *extra: str) -> int:
    return main(
        [
            "models",
            "upload",
            "--models",
            str(store),
            "--connection-string",
            cs,
            "--container",
            container,
            "--create-container",
            *extra,
        ]
    )


class RequestSpy:
    """Records (method, path) of every HTTP request a client sends."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request) -> None:
        http = request.http_request
        self.requests.append((http.method, http.url.split("?")[0]))

    def writes(self) -> list[str]:
        return [url for method, url in self.requests if method == "PUT"]


def _container() -> str:
    return f"models-{uuid.uuid4().hex[:12]}"


def test_round_trip_gives_identical_bytes(azurite, tmp_path, capsys):
    store = tmp_path / "store"
    _make_store(store)
    container = _container()

    assert _upload_cli(store, azurite, container) == 0

    out = capsys.readouterr().out
    assert "uploaded 3, unchanged 0" in out
    local = _local_files(store)
    remote = _download_all(azurite, container, "store/")
    assert set(remote) == set(local), "blob names differ from the store's relative paths"
    # the default folder is where the scoring pipeline reads the store
    from components.config.pipeline import PipelineTarget

    assert PipelineTarget().models_uri().endswith("/paths/store/")
    for name, data in local.items():
        assert remote[name] == data, f"{name}: downloaded bytes differ"
    assert f"{sum(len(d) for d in local.values())} bytes" in out


def test_every_blob_records_its_sha256(azurite, tmp_path):
    store = tmp_path / "store"
    _make_store(store)
    container = _container()
    assert _upload_cli(store, azurite, container) == 0

    client = BlobServiceClient.from_connection_string(azurite).get_container_client(container)
    for blob in client.list_blobs(include=["metadata"]):
        data = client.download_blob(blob.name).readall()
        assert blob.metadata.get("sha256") == hashlib.sha256(data).hexdigest(), blob.name


def test_unchanged_reupload_transfers_nothing(azurite, tmp_path, capsys):
    store = tmp_path / "store"
    _make_store(store)
    container = _container()
    assert _upload_cli(store, azurite, container) == 0
    capsys.readouterr()

    spy = RequestSpy()
    with container_client(container, connection_string=azurite, raw_request_hook=spy) as client:
        summary = upload_store(str(store), client)

    assert (summary.uploaded, summary.unchanged, summary.bytes_uploaded) == (0, 3, 0)
    assert not summary.manifest_uploaded
    assert spy.writes() == [], f"unchanged re-upload still wrote {spy.writes()}"
    assert _upload_cli(store, azurite, container) == 0
    assert "uploaded 0, unchanged 3, 0 bytes, manifest unchanged" in capsys.readouterr().out


def test_changed_model_uploads_alone_and_manifest_goes_last(azurite, tmp_path):
    store = tmp_path / "store"
    _make_store(store)
    container = _container()
    assert _upload_cli(store, azurite, container) == 0
    _make_store(store, pairs=[PAIRS[0]], seed=42)  # retrain one pair: a new model version

    spy = RequestSpy()
    with container_client(container, connection_string=azurite, raw_request_hook=spy) as client:
        summary = upload_store(str(store), client)

    assert (summary.uploaded, summary.unchanged, summary.manifest_uploaded) == (1, 2, True)
    writes = spy.writes()
    assert len(writes) == 2, writes
    assert writes[-1].endswith("/manifest.json"), f"manifest not last: {writes}"
    remote = _download_all(azurite, container, "store/")
    manifest_files = {e["file"] for e in _manifest_entries(store)}
    assert manifest_files <= set(remote), "the remote manifest points at a missing model"


def _manifest_entries(store: Path) -> list[dict]:
    import json

    return json.loads((store / "manifest.json").read_text())["models"]


def test_prefix_puts_the_store_in_a_folder(azurite, tmp_path):
    store = tmp_path / "store"
    _make_store(store)
    container = _container()
    assert _upload_cli(store, azurite, container, "--prefix", "/fleet-a/") == 0
    remote = _download_all(azurite, container, prefix="fleet-a/")
    assert set(remote) == set(_local_files(store))
    assert len(_download_all(azurite, container)) == len(remote), "only under the prefix"


def test_corrupt_model_uploads_nothing_and_names_the_file(azurite, tmp_path, capsys):
    store = tmp_path / "store"
    _make_store(store)
    victim = _manifest_entries(store)[1]["file"]
    (store / victim).write_bytes(b"not a skops file")
    container = _container()

    assert _upload_cli(store, azurite, container) == 2

    err = capsys.readouterr().err
    assert victim.split("/")[-1] in err and "corrupt" in err
    assert "nothing was uploaded" in err
    client = BlobServiceClient.from_connection_string(azurite).get_container_client(container)
    assert not client.exists() or list(client.list_blobs()) == []


def test_missing_container_is_not_created_without_the_flag(azurite, tmp_path, caplog):
    store = tmp_path / "store"
    _make_store(store, pairs=PAIRS[:1])
    container = _container()
    code = main(
        [
            "models",
            "upload",
            "--models",
            str(store),
            "--connection-string",
            azurite,
            "--container",
            container,
        ]
    )
    assert code == 1
    assert f"{container} does not exist" in caplog.text
    assert "--create-container" in caplog.text


def test_connection_string_is_never_logged(azurite, tmp_path, capsys, caplog):
    store = tmp_path / "store"
    _make_store(store, pairs=PAIRS[:1])
    wrong_key = azurite.replace(
        DEV_KEY, "d3Jvbmcta2V5LW9mLTY0LWJ5dGVzLXNvLWl0LXBhcnNlcy1mb3ItYXp1cml0ZQ=="
    )
    with caplog.at_level("DEBUG"):
        ok = main(["--log-level", "DEBUG", "models", "upload", "--models", str(store),
                   "--connection-string", azurite, "--container", _container(),
                   "--create-container"])  # fmt: skip
        failed = main(["--log-level", "DEBUG", "models", "upload", "--models", str(store),
                       "--connection-string", wrong_key, "--container", _container(),
                       "--create-container"])  # fmt: skip
    assert (ok, failed) == (0, 1)
    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text
    assert "HTTP 403" in caplog.text, "the wrong key should have been refused"
    for secret in (DEV_KEY, wrong_key.split("AccountKey=")[1].split(";")[0]):
        assert secret not in everything
        assert secret[:20] not in everything


def test_connection_string_from_environment(azurite, tmp_path, capsys, monkeypatch):
    store = tmp_path / "store"
    _make_store(store, pairs=PAIRS[:1])
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    code = main(["models", "upload", "--models", str(store), "--connection-string-env",
                 "--container", _container(), "--create-container"])  # fmt: skip
    assert code == 0
    assert "uploaded 1, unchanged 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--connection-string", "nonsense"], "--connection-string: the connection string is"),
        (["--account-url", "blob.example"], "--account-url blob.example"),
        (["--connection-string-env", "NO_SUCH_VARIABLE_XYZ"], "NO_SUCH_VARIABLE_XYZ is not set"),
    ],
)
def test_bad_usage_is_one_line_naming_the_flag(tmp_path, capsys, argv, message):
    store = tmp_path / "store"
    store.mkdir()
    code = main(["models", "upload", "--models", str(store), "--container", "models", *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "nonsense" not in err


def test_missing_store_folder_is_named(tmp_path, capsys):
    code = main(["models", "upload", "--models", str(tmp_path / "nope"),
                 "--connection-string", "x", "--container", "models"])  # fmt: skip
    assert code == 2
    assert "--models" in capsys.readouterr().err


def test_azurite_is_installed_by_the_makefile():
    """package.json pins azurite exactly and the Makefile installs it before the tests run."""
    import json

    package = json.loads((ROOT / "package.json").read_text())
    version = package["devDependencies"]["azurite"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"azurite not pinned: {version}"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/azurite"]["version"] == version
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "$(MAKE) --no-print-directory node_modules" in test_recipe, (
        "with npm, make test installs"
    )
    assert "$(NPM) ci" in makefile
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci.index("make node_modules") < ci.index("make test"), "CI installs Azurite first"
    assert shutil.which("npm") or os.environ.get("CI") != "true", "npm is needed in CI"


def test_the_pinned_azurite_runs_on_this_node():
    import json

    lock = json.loads((ROOT / "package-lock.json").read_text())
    wanted = lock["packages"]["node_modules/azurite"]["engines"]["node"]
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)", wanted)
    assert minimum, f"azurite's engines.node {wanted!r} is no longer a plain minimum"
    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js here (CI has one: .ci/run installs node_modules)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    have = tuple(int(part) for part in version.strip().lstrip("v").split("."))
    assert have >= tuple(int(part) for part in minimum.groups()), (version, wanted)


def test_a_current_pack_travels_with_the_models_before_the_manifest(azurite, tmp_path, capsys):
    from scoring.models.pack import PACK_NAME, write_pack

    store = tmp_path / "store"
    write_pack(_make_store(store))
    container = _container()

    spy = RequestSpy()
    with container_client(container, connection_string=azurite, raw_request_hook=spy) as client:
        summary = upload_store(str(store), client, create_container=True)

    assert summary.uploaded == 4, "three models and the pack"
    remote = _download_all(azurite, container, "store/")
    assert remote[PACK_NAME] == (store / PACK_NAME).read_bytes()
    writes = spy.writes()
    assert writes[-1].endswith("/manifest.json"), f"the manifest must go last: {writes}"
    assert any(url.endswith(f"/{PACK_NAME}") for url in writes[:-1])


def test_a_stale_pack_is_not_uploaded(azurite, tmp_path, caplog):
    from scoring.models.pack import PACK_NAME, write_pack

    store_root = tmp_path / "store"
    store = _make_store(store_root)
    write_pack(store)
    # Retrain after packing: the pack no longer matches the manifest.
    _make_store(store_root, seed=1)
    container = _container()
    with caplog.at_level("WARNING"):
        assert _upload_cli(store_root, azurite, container) == 0
    assert PACK_NAME not in _download_all(azurite, container, "store/")
    assert "stale" in caplog.text and PACK_NAME in caplog.text


ACCOUNT = "https://nosuchaccount0.blob.core.windows.net"


def test_without_a_credential_it_fails_at_the_first_token(tmp_path, capsys, monkeypatch):
    from azure.identity import CredentialUnavailableError

    asked: list[tuple[str, ...]] = []

    class NoCredential:
        def __init__(self, **_):
            pass

        def get_token(self, *scopes, **_):
            asked.append(scopes)
            raise CredentialUnavailableError("no credential on this machine")

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", NoCredential)
    store = tmp_path / "store"
    _make_store(store, pairs=PAIRS[:1])
    code = main(["models", "upload", "--models", str(store), "--account-url", ACCOUNT,
                 "--container", "models"])  # fmt: skip
    assert code == 1
    assert asked == [("https://storage.azure.com/.default",)], "asked once, never retried"
    err = capsys.readouterr().err
    assert err == (
        f"error: cannot sign in to {ACCOUNT}: no usable Azure credential (no credential on "
        "this machine); run `az login` or use a managed identity that holds Storage Blob Data "
        "Contributor\n"
    )


def test_without_a_credential_the_real_command_fails_in_seconds_in_one_line(tmp_path):
    store = tmp_path / "store"
    _make_store(store, pairs=PAIRS[:1])
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("AZURE_", "MSI_"))
    }
    environment["AZURE_CONFIG_DIR"] = str(tmp_path / "no-az-login")  # an Azure CLI, if any,
    started = time.monotonic()  # is signed in to nothing
    done = subprocess.run(
        [sys.executable, "-m", "batchscore", "models", "upload", "--models", str(store),
         "--account-url", ACCOUNT, "--container", "models"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert elapsed < 30, f"{elapsed:.0f} s: the SDK's retries are back"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "no usable Azure credential" in lines[0], done.stderr
