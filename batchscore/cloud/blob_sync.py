"""Push a local model store to a Blob container, transferring only what changed.

What is uploaded is exactly what the store's ``manifest.json`` lists, the model pack
(``models.pack.arrow``, only when built from this manifest), and the manifest:

1. Every listed model file is read and checked against the sha256 in the manifest
   (:meth:`scoring.models.store.ModelStore.read_model_bytes`). If any is missing or corrupt,
   nothing is uploaded and every bad file is named: a manifest must never go up pointing
   at a model that is not there.
2. One listing of the container (with metadata) tells which blobs already hold the same
   bytes: each uploaded blob carries its sha256 in the metadata field ``sha256``. Those are
   skipped, the others uploaded (in parallel, with progress).
3. The manifest goes up last, so readers see either the old store or the new one, never a
   manifest pointing at missing models.

Authentication: Entra (``DefaultAzureCredential`` with an account URL; the identity needs
*Storage Blob Data Contributor* on the account or container) or, for Azurite and dev only,
a connection string. A connection string is never logged or printed: what is shown is the
container URL with any query (a SAS) cut off.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scoring.errors import RunFailed
from scoring.models.store import MANIFEST_NAME, ModelStore, ModelStoreError
from scoring.progress import progress_bar

log = logging.getLogger(__name__)

SHA256_METADATA_KEY = "sha256"
DEFAULT_WORKERS = 8
#: the folder of the container the scoring pipeline reads the store from
#: (components.config.pipeline.PipelineTarget.models_path)
DEFAULT_PREFIX = "store"
STORE_CONTRIBUTOR = "Storage Blob Data Contributor"
#: the token audience of Azure Storage
STORAGE_SCOPE = "https://storage.azure.com/.default"


class BlobSyncError(RunFailed):
    """A storage call failed; the message names the container and what to do."""


@dataclass(frozen=True)
class UploadSummary:
    """What one upload did. ``bytes_uploaded`` counts file bytes sent (manifest included)."""

    uploaded: int
    unchanged: int
    bytes_uploaded: int
    manifest_uploaded: bool
    destination: str

    def line(self) -> str:
        manifest = "manifest uploaded" if self.manifest_uploaded else "manifest unchanged"
        return (
            f"uploaded {self.uploaded}, unchanged {self.unchanged}, "
            f"{self.bytes_uploaded} bytes, {manifest} -> {self.destination}"
        )


@dataclass(frozen=True)
class _LocalFile:
    blob_name: str
    data: bytes
    sha256: str
    content_type: str


def container_client(
    container: str,
    *,
    account_url: str | None = None,
    connection_string: str | None = None,
    **client_kwargs: Any,
) -> Any:
    """A ``ContainerClient`` with Entra auth (``account_url``) or a connection string.

    With Entra auth a token is asked for once, here: without a usable credential this fails
    at once (a :class:`BlobSyncError` saying how to sign in) instead of after the client's
    retries, a minute later. ``client_kwargs`` go to the client (tests pass a
    ``raw_request_hook`` to count requests).
    """
    from azure.storage.blob import ContainerClient, ExponentialRetry

    if (account_url is None) == (connection_string is None):
        raise ValueError("give exactly one of account_url or connection_string")
    # The SDK's defaults wait 20 s per connection attempt and back off 15 s + 3**n between its
    # three retries: an unreachable endpoint was silent for about 85 s (azure-storage-blob
    # _shared/policies.py ExponentialRetry, _shared/base_client.py CONNECTION_TIMEOUT). A
    # command line answers within seconds, naming the endpoint.
    client_kwargs.setdefault("connection_timeout", CONNECT_TIMEOUT_SECONDS)
    client_kwargs.setdefault(
        "retry_policy",
        ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=STORAGE_RETRIES),
    )
    if connection_string is not None:
        try:
            return ContainerClient.from_connection_string(
                connection_string, container, **client_kwargs
            )
        except ValueError:
            # The SDK's message is fine, but never echo the string itself.
            raise BlobSyncError(
                "the connection string is malformed (expected "
                "'DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;BlobEndpoint=...')"
            ) from None
    from components.providers.common import default_credential

    credential = default_credential()
    storage_call(lambda: credential.get_token(STORAGE_SCOPE), "sign in to", safe_url(account_url))
    return ContainerClient(account_url, container, credential=credential, **client_kwargs)


#: seconds to open a connection to a storage endpoint, and retries of a failed request: at
#: most (1 + STORAGE_RETRIES) x CONNECT_TIMEOUT_SECONDS + the backoffs (1 s, 3 s) in all
CONNECT_TIMEOUT_SECONDS = 5
STORAGE_RETRIES = 2


def safe_url(url: str) -> str:
    """``url`` without its query and fragment (a SAS token never reaches a log)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def upload_store(
    store_root: str,
    container: Any,
    *,
    prefix: str = DEFAULT_PREFIX,
    create_container: bool = False,
    workers: int = DEFAULT_WORKERS,
) -> UploadSummary:
    """Upload the model store at ``store_root`` to ``container`` (a ``ContainerClient``).

    Blob names are ``<prefix>/<path in the store>``. Raises :class:`ModelStoreError` for a bad
    local store (nothing uploaded) and :class:`BlobSyncError` for storage failures.
    """
    destination = safe_url(container.url) + (f"/{prefix.strip('/')}" if prefix.strip("/") else "")
    files, manifest = _local_files(store_root, prefix)
    storage_call(lambda: _ensure_container(container, create_container), "open", destination)
    remote = storage_call(lambda: _remote_hashes(container, prefix), "list", destination)

    changed = [f for f in files if remote.get(f.blob_name) != f.sha256]
    unchanged = len(files) - len(changed)
    log.info(
        "%d model files in %s: %d to upload, %d unchanged",
        len(files),
        store_root,
        len(changed),
        unchanged,
    )
    sent_bytes = 0
    with progress_bar(total=len(changed), desc="uploading models", unit="file") as bar:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(_upload, container, f): f for f in changed}
            for future in as_completed(futures):
                item = futures[future]
                storage_call(future.result, f"upload {item.blob_name} to", destination)
                sent_bytes += len(item.data)
                bar.update(1)

    manifest_changed = remote.get(manifest.blob_name) != manifest.sha256
    if manifest_changed:
        storage_call(lambda: _upload(container, manifest), "upload the manifest to", destination)
        sent_bytes += len(manifest.data)
    return UploadSummary(
        uploaded=len(changed),
        unchanged=unchanged,
        bytes_uploaded=sent_bytes,
        manifest_uploaded=manifest_changed,
        destination=destination,
    )


def blob_name(prefix: str, relpath: str) -> str:
    clean = prefix.strip("/")
    return f"{clean}/{relpath}" if clean else relpath


def _local_files(store_root: str, prefix: str) -> tuple[list[_LocalFile], _LocalFile]:
    """Every model file the manifest lists (verified) and the manifest itself."""
    store = ModelStore(store_root)
    pairs = store.keys()  # raises ModelStoreError naming the manifest if it is bad
    files: list[_LocalFile] = []
    problems: list[str] = []
    for device, sensor in pairs:
        try:
            entry, _path, data = store.read_model_bytes(device, sensor)
        except ModelStoreError as exc:
            problems.append(str(exc))
            continue
        files.append(
            _LocalFile(
                blob_name(prefix, str(entry["file"])),
                data,
                str(entry["sha256"]),
                "application/octet-stream",
            )
        )
    if problems:
        listed = "; ".join(problems)
        raise ModelStoreError(
            f"{store.manifest_path}: {len(problems)} of {len(pairs)} models cannot be uploaded, "
            f"so nothing was uploaded: {listed}"
        )
    pack = _current_pack(store, prefix)
    if pack is not None:
        files.append(pack)
    manifest_bytes = store.manifest_path.read_bytes()
    manifest = _LocalFile(
        blob_name(prefix, MANIFEST_NAME),
        manifest_bytes,
        hashlib.sha256(manifest_bytes).hexdigest(),
        "application/json",
    )
    return files, manifest


def _current_pack(store: ModelStore, prefix: str) -> _LocalFile | None:
    """The store's model pack, if built from this manifest: it goes up with the models and
    before the manifest, so a reader never pairs a new manifest with an old pack (a stale
    pack would only be ignored, but scoring would then lose its fast path)."""
    from scoring.models.pack import PACK_NAME, PackedStore, pack_path

    if PackedStore.for_store(store) is None:
        if pack_path(store).exists():
            log.warning(
                "%s is stale: not uploaded (rebuild it with `batchscore models pack DIR`)",
                pack_path(store),
            )
        return None
    data = pack_path(store).read_bytes()
    return _LocalFile(
        blob_name(prefix, PACK_NAME),
        data,
        hashlib.sha256(data).hexdigest(),
        "application/vnd.apache.arrow.file",
    )


def _ensure_container(container: Any, create: bool) -> None:
    if container.exists():
        return
    if not create:
        raise BlobSyncError(
            f"container {safe_url(container.url)} does not exist (check --container, or pass "
            "--create-container to create it)"
        )
    log.info("creating container %s", safe_url(container.url))
    container.create_container()


def _remote_hashes(container: Any, prefix: str) -> dict[str, str | None]:
    """Blob name -> its recorded sha256 (None when the blob has none), for blobs under prefix."""
    start = f"{prefix.strip('/')}/" if prefix.strip("/") else None
    return {
        blob.name: (blob.metadata or {}).get(SHA256_METADATA_KEY)
        for blob in container.list_blobs(name_starts_with=start, include=["metadata"])
    }


def _upload(container: Any, item: _LocalFile) -> None:
    from azure.storage.blob import ContentSettings

    container.upload_blob(
        item.blob_name,
        item.data,
        overwrite=True,
        metadata={SHA256_METADATA_KEY: item.sha256},
        content_settings=ContentSettings(
            content_type=item.content_type,
            content_md5=bytearray(hashlib.md5(item.data).digest()),
        ),
    )


def storage_call(
    call: Callable[[], Any], action: str, destination: str, role: str = STORE_CONTRIBUTOR
) -> Any:
    """Run ``call``; storage errors become one BlobSyncError sentence naming the destination
    and the role the identity needs for it."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    try:
        return call()
    except BlobSyncError:
        raise
    except ClientAuthenticationError as exc:
        raise BlobSyncError(
            f"cannot {action} {destination}: no usable Azure credential ({_first_line(exc)}); "
            f"run `az login` or use a managed identity that holds {role}"
        ) from exc
    except HttpResponseError as exc:
        status = getattr(exc, "status_code", None)
        if status == 403:
            advice = f"the identity needs the role {role} on the account or container"
        elif status == 404:
            advice = "the container or account was not found"
        else:
            advice = "the storage service rejected the request"
        raise BlobSyncError(
            f"cannot {action} {destination} (HTTP {status}): {advice}. "
            f"Storage said: {_first_line(exc)}"
        ) from exc
    except ServiceRequestError as exc:
        raise BlobSyncError(
            f"cannot {action} {destination}: the storage endpoint is unreachable "
            f"({_first_line(exc)})"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
