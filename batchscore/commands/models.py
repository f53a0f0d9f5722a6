"""``batchscore models <action>``: manage a model store.

``pack`` builds or refreshes the store's pack (``models.pack.arrow``: every compiled model
in one memory-mapped file, :mod:`scoring.models.pack`), so scoring serves its models without
reading a model file per model; ``train`` already does this after training.

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


ACTIONS = ("pack", "upload", "verify", "history", "rollback", "pin", "unpin")


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
        "serves its models without reading a model file per model. Unchanged rows are reused.",
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
        description="Push a local model store (manifest.json + model files) to a Blob "
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

    _add_generation_actions(actions)


def _store_location(parser: argparse.ArgumentParser) -> None:
    """Where the store is: a folder (``--models``) or a Blob container (``--container`` with
    one of the sign-in flags)."""
    parser.add_argument("--models", **_store_folder())
    blob = parser.add_argument_group("or on Blob storage (the store the pipelines use)")
    add_blob_auth(blob.add_mutually_exclusive_group())
    blob.add_argument("--container", metavar="NAME", help="the Blob container (e.g. models)")
    blob.add_argument(
        "--prefix",
        default=blob_sync.DEFAULT_PREFIX,
        metavar="P",
        help=f"folder of the store in the container (default: {blob_sync.DEFAULT_PREFIX})",
    )


def _add_generation_actions(actions) -> None:
    history = actions.add_parser(
        "history",
        help="the store's generations: when, how many pairs, promoted, which is current",
        description="List the kept generations of a model store (oldest first), with the "
        "current one marked.",
    )
    _store_location(history)
    history.add_argument("--json", action="store_true", help="a JSON list of objects instead")
    rollback = actions.add_parser(
        "rollback",
        help="make an earlier generation current again (atomic, verified first)",
        description="Make a kept generation the current one: every file it lists is checked "
        "first, then the manifest is switched in one write. Scoring uses it from its next run.",
    )
    _store_location(rollback)
    rollback.add_argument("--to", type=int, required=True, metavar="GENERATION")
    pin = actions.add_parser(
        "pin",
        help="serve one (Device, Sensor) with a given generation's model until unpinned",
        description="Pin one pair to a generation's model: it is served whatever generation "
        "is current (new generations and rollbacks included) until `models unpin`.",
    )
    pin.add_argument("device", metavar="DEVICE")
    pin.add_argument("sensor", metavar="SENSOR")
    pin.add_argument("--to", type=int, required=True, metavar="GENERATION")
    _store_location(pin)
    unpin = actions.add_parser(
        "unpin",
        help="serve a pinned (Device, Sensor) from the current generation again",
        description="Remove a pair's pin: it is served by the current generation again.",
    )
    unpin.add_argument("device", metavar="DEVICE")
    unpin.add_argument("sensor", metavar="SENSOR")
    _store_location(unpin)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "models_action", None)
    if action not in ACTIONS:
        raise UsageError(
            f"models: choose an action: {', '.join(ACTIONS)} (see `batchscore models -h`)"
        )
    handlers = {"pack": _pack, "upload": _upload, "verify": _verify}
    if action in handlers:
        return handlers[action](args)
    return _generations_action(action, args)


def _generations_action(action: str, args: argparse.Namespace) -> int:
    from batchscore.commands.blob_source import uses_blob
    from scoring.models.generations import Generations

    if uses_blob(args) or args.container:
        if not (uses_blob(args) and args.container):
            raise UsageError(
                "--container needs one of --account-url, --connection-string or "
                "--connection-string-env (and the other way round)"
            )
        from batchscore.cloud.blob_generations import blob_generations

        container = open_container(args, args.container)
        with container:
            return _on_generations(action, args, blob_generations(container, args.prefix))
    _require_folder("--models", args.models)
    return _on_generations(action, args, Generations.local(args.models))


def _on_generations(action: str, args: argparse.Namespace, generations) -> int:
    from batchscore.cloud.blob_sync import BlobSyncError
    from scoring.models.store import ModelStoreError

    try:
        if action == "history":
            _print_history(generations.history(), as_json=args.json, where=generations)
        elif action == "rollback":
            done = generations.rollback(args.to)
            print(f"{generations.files.where()}: generation {done.generation} is current")
        elif action == "pin":
            entry = generations.pin(args.device, args.sensor, args.to)
            print(
                f"Device={args.device!r} Sensor={args.sensor!r} pinned to generation {args.to} "
                f"(version {entry['version']})"
            )
        else:
            if not generations.unpin(args.device, args.sensor):
                raise UsageError(f"Device={args.device!r} Sensor={args.sensor!r} is not pinned")
            print(f"Device={args.device!r} Sensor={args.sensor!r} unpinned")
    except ModelStoreError as exc:
        raise UsageError(str(exc)) from None
    except BlobSyncError as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    return EXIT_OK


_HISTORY_COLUMNS = ("generation", "created", "pairs", "promoted", "added", "rejected", "source")


def _print_history(rows: list[dict], *, as_json: bool, where) -> None:
    import json

    if as_json:
        print(json.dumps(rows, indent=1))
        return
    if not rows:
        print(f"{where.files.where()}: no generations yet (the training pipeline writes them)")
        return
    table = [[*_HISTORY_COLUMNS, "current"]]
    for row in rows:
        mark = "*" if row["current"] else ""
        if row["pinned"]:
            mark += f" ({row['pinned']} pinned)"
        table.append([str(row[c]) for c in _HISTORY_COLUMNS] + [mark.strip()])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


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
