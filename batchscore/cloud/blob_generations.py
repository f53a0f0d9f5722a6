"""The generations of a model store in a Blob container (the store the pipelines read).

:class:`BlobFiles` gives :class:`scoring.models.generations.Generations` the store's files as
blobs under ``<prefix>/``: one blob upload replaces a blob whole (readers get the old or the
new bytes), which is what makes the manifest switch atomic there too. Every blob written
records its sha256 in its metadata, as ``batchscore models upload`` does, so a later upload
recognises it. Storage errors become one :class:`~batchscore.cloud.blob_sync.BlobSyncError`
line naming the container and the role needed.

There is no pack rebuild on Blob storage: a switch copies the generation's own pack when it
has one (built by the promote step) and otherwise removes the root pack, so scoring loads the
models from their files until the next generation (``batchscore models pack`` locally, then
``models upload``, brings one back).
"""

from __future__ import annotations

import hashlib
from typing import Any

from batchscore.cloud.blob_sync import (
    SHA256_METADATA_KEY,
    blob_name,
    safe_url,
    storage_call,
)
from scoring.models.generations import DEFAULT_KEEP, Generations


class BlobFiles:
    """The files of a store under ``prefix`` in a container (a ``ContainerClient``)."""

    def __init__(self, container: Any, prefix: str) -> None:
        self.container = container
        self.prefix = prefix.strip("/")

    def _blob(self, name: str) -> str:
        return blob_name(self.prefix, name)

    def where(self, name: str = "") -> str:
        base = safe_url(self.container.url) + (f"/{self.prefix}" if self.prefix else "")
        return f"{base}/{name}" if name else base

    def read(self, name: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        def download() -> bytes | None:
            try:
                return self.container.download_blob(self._blob(name)).readall()
            except ResourceNotFoundError:
                return None

        return storage_call(download, "read", self.where(name))

    def write(self, name: str, data: bytes) -> None:
        from azure.storage.blob import ContentSettings

        storage_call(
            lambda: self.container.upload_blob(
                self._blob(name),
                data,
                overwrite=True,
                metadata={SHA256_METADATA_KEY: hashlib.sha256(data).hexdigest()},
                content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(data).digest())),
            ),
            "write",
            self.where(name),
        )

    def delete(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        def remove() -> None:
            try:
                self.container.delete_blob(self._blob(name))
            except ResourceNotFoundError:
                pass

        storage_call(remove, "delete", self.where(name))

    def names(self, under: str = "") -> list[str]:
        start = (
            self._blob(under.strip("/")) + "/"
            if under
            else (f"{self.prefix}/" if self.prefix else None)
        )
        cut = len(self.prefix) + 1 if self.prefix else 0
        return storage_call(
            lambda: sorted(b.name[cut:] for b in self.container.list_blobs(name_starts_with=start)),
            "list",
            self.where(under),
        )


def blob_generations(container: Any, prefix: str, *, keep: int = DEFAULT_KEEP) -> Generations:
    """The generations of the store under ``prefix`` in ``container``."""
    return Generations(BlobFiles(container, prefix), keep=keep, repack=None)
