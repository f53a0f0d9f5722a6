"""The run summaries in the predictions container: ``<prefix>/window=<end>/summary.json``.

The scoring pipeline's publish step writes them under the predictions datastore's root
(``scored/``, :data:`components.config.pipeline.PREDICTIONS_PATH`). Reading needs *Storage Blob
Data Reader* on the account or container (Entra auth through ``DefaultAzureCredential``, see
:func:`batchscore.cloud.blob_sync.container_client`); storage errors become one sentence that
names the container and that role.
"""

from __future__ import annotations

from typing import Any

from batchscore.cloud.blob_sync import safe_url, storage_call
from batchscore.run_history import WINDOW_FOLDER, History, RunHistoryError
from scoring.steps.publish import SUMMARY_FILE

READER = "Storage Blob Data Reader"


def read_container(container: Any, prefix: str) -> History:
    """Every run summary under ``prefix`` of a ``ContainerClient``, sorted by window end."""
    root = prefix.strip("/")
    where = safe_url(container.url) + (f"/{root}" if root else "")
    start = f"{root}/window=" if root else "window="
    names = storage_call(
        lambda: [b.name for b in container.list_blobs(name_starts_with=start)],
        "list",
        where,
        role=READER,
    )
    summaries = [n for n in names if _is_summary(n, root)]
    history = History()
    for name in sorted(summaries):
        data = storage_call(
            lambda name=name: container.download_blob(name).readall(),
            f"read {name} from",
            where,
            role=READER,
        )
        history.add(f"{safe_url(container.url)}/{name}", data, _window_of(name, root))
    with_summary = {_window_of(n, root) for n in summaries}
    for window in sorted({w for n in names if (w := _window_of(n, root))} - with_summary):
        history.missing(f"{where}/{window}", window)
    if not history.runs and not history.unreadable:
        raise RunHistoryError(
            f"{where}: no window=<end>/{SUMMARY_FILE} here (check --container and --prefix; "
            "the pipeline writes them under scored/ of the predictions container)"
        )
    return history.sorted()


def _is_summary(name: str, root: str) -> bool:
    parts = name.split("/")
    below = parts[len(root.split("/")) :] if root else parts
    return (
        len(below) == 2 and WINDOW_FOLDER.match(below[0]) is not None and below[1] == SUMMARY_FILE
    )


def _window_of(name: str, root: str) -> str | None:
    """The ``window=<end>`` folder a blob is in (None when it is in none)."""
    parts = name.split("/")
    below = parts[len(root.split("/")) :] if root else parts
    return below[0] if len(below) >= 2 and WINDOW_FOLDER.match(below[0]) else None
