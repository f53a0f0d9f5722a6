"""``batchscore models <action>``: manage a model store.

``pack`` builds or refreshes the store's pack (``models.pack.arrow``: every compiled model
in one memory-mapped file, :mod:`scoring.models.pack`), so scoring serves its models without
reading a skops file per model; ``train`` already does this after training.

``upload`` pushes a local store to a Blob container (see :mod:`batchscore.cloud.blob_sync`)::

    batchscore models upload --models work/models \\
        --account-url https://<account>.blob.core.windows.net --container models

Entra auth (``DefaultAzureCredential``) with ``--account-url``; ``--connection-string`` is
for Azurite and dev accounts only (it holds a key: prefer the environment variable
``AZURE_STORAGE_CONNECTION_STRING`` with ``--connection-string-env`` so it stays out of
the shell history). Unchanged models are not transferred again.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from batchscore.cloud import blob_sync
from batchscore.commands.blob_source import add_blob_auth, open_container
from scoring import work_folder
from scoring.errors import EXIT_FAILED, EXIT_OK, UsageError
from scoring.work_folder import MODELS_FOLDER

log = logging.getLogger(__name__)


ACTIONS = ("pack", "upload", "verify")


def _store_folder() -> dict:
    return {
        "type": Path,
        "metavar": "DIR",
        "default": MODELS_FOLDER,
        "help": f"the model store folder (default: {MODELS_FOLDER}, where train writes)",
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="models_action", metavar="<action>")
    pack = actions.add_parser(
        "pack",
        help="build or refresh models.pack.arrow in a model store (what makes scoring fast)",
        description="Build or refresh models.pack.arrow in a model store folder, so scoring "
        "serves its models without reading a skops file per model. Unchanged rows are reused.",
    )
    pack.add_argument("models", nargs="?", **_store_folder())
    verify = actions.add_parser(
        "verify",
        help="check every model file against the manifest and every row of the pack",
        description="Check a model store: every file the manifest lists exists and has the "
        "sha256 the manifest records (with --load, also rebuilds safely), and the pack, if "
        "any, was built from this manifest with every row intact. Scoring itself checks "
        "only what it uses (see the README): run this after copying or restoring a store.",
    )
    verify.add_argument("models", nargs="?", **_store_folder())
    verify.add_argument(
        "--load",
        action="store_true",
        help="also rebuild every model (allow-listed types, upgrade probes); slower",
    )
    upload = actions.add_parser(
        "upload",
        help="push a local model store to a Blob container (only changed models)",
        description="Push a local model store (manifest.json + skops files) to a Blob "
        "container. Models whose bytes are already there are skipped; the manifest goes last.",
    )
    upload.add_argument("--models", **_store_folder())
    add_blob_auth(upload.add_mutually_exclusive_group(required=True))
    upload.add_argument("--container", required=True, metavar="NAME", help="the Blob container")
    upload.add_argument(
        "--prefix",
        default=blob_sync.DEFAULT_PREFIX,
        metavar="P",
        help=f"folder inside the container (default: {blob_sync.DEFAULT_PREFIX}, where the scoring "
        "pipeline reads the store)",
    )
    upload.add_argument(
        "--create-container",
        action="store_true",
        help="create the container when it does not exist (default: fail, to catch typos)",
    )
    upload.add_argument(
        "--workers", type=int, default=8, metavar="N", help="parallel uploads (default 8)"
    )


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "models_action", None)
    if action not in ACTIONS:
        raise UsageError(
            f"models: choose an action: {', '.join(ACTIONS)} (see `batchscore models -h`)"
        )
    return {"pack": _pack, "upload": _upload, "verify": _verify}[action](args)


def _require_folder(flag: str, folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {folder}: exists and is not a folder")
    if not folder.is_dir():
        raise UsageError(work_folder.missing(flag, folder, "no such folder"))


def _existing_store(flag: str, folder: Path):
    """The model store in ``folder``; a folder that is missing or holds no manifest is a
    usage error naming ``flag``."""
    from scoring.models.store import ModelStore

    _require_folder(flag, folder)
    store = ModelStore(folder)
    if not store.manifest_path.is_file():
        raise UsageError(f"{flag} {folder}: no manifest.json here (not a model store)")
    return store


def _verify(args: argparse.Namespace) -> int:
    from scoring.models.pack import verify_pack

    store = _existing_store("model store", args.models)
    problems = store.verify_files(load=args.load)
    rows, pack_problems = verify_pack(store)
    problems += pack_problems
    for problem in problems:
        print(f"  {problem}")
    checked = "files checked and loaded" if args.load else "files checked (sha256)"
    print(
        f"{args.models}: {len(store)} model {checked}, {rows} pack rows checked, "
        f"{len(problems)} problem(s)"
    )
    return EXIT_FAILED if problems else EXIT_OK


def _pack(args: argparse.Namespace) -> int:
    from scoring.models.pack import write_pack

    summary = write_pack(_existing_store("model store", args.models))
    print(
        f"{summary.path}: {summary.packed} models packed ({summary.reused} unchanged), "
        f"{len(summary.not_compiled)} left to their files, {len(summary.failed)} failed"
    )
    return EXIT_FAILED if summary.failed else EXIT_OK


def _upload(args: argparse.Namespace) -> int:
    from batchscore.cloud.blob_sync import BlobSyncError, upload_store
    from scoring.models.store import ModelStoreError

    _require_folder("--models", args.models)
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: must be at least 1")
    container = open_container(args, args.container)
    try:
        with container:
            summary = upload_store(
                str(args.models),
                container,
                prefix=args.prefix,
                create_container=args.create_container,
                workers=args.workers,
            )
    except ModelStoreError as exc:
        raise UsageError(f"--models {args.models}: {exc}") from None
    except BlobSyncError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    print(summary.line())
    return EXIT_OK
