"""One run at a time in an output folder, and what the run before left there.

A run holds the folder's lock file (:data:`LOCK_FILE`, holding the owner's pid) from start
to end. The lock is an ``flock`` on that file: the kernel releases it when its process
ends, however it ends, so a run killed with ``kill -9`` leaves a lock file that the next
run takes over, while a live run's lock refuses a second run with one line naming its
pid. Holding the lock, a run knows no other writer is at work, so it removes the
temporary files (spools, half-written files) that killed runs left behind.

POSIX only (``fcntl``), as the runner's process handling is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scoring.data.files import remove_temporaries
from scoring.runner.contract import InvalidSettingsError

LOCK_FILE = ".batchscore.lock"
#: spool and rewrite files of runs before the spool used files.temporary_sibling (mkstemp)
_OLD_TEMPORARY_NAME = re.compile(r"^\.predictions-[A-Za-z0-9_]+\.(spool|tmp)$")


class OutputFolderBusy(InvalidSettingsError):
    """Another live run holds the output folder (one line, exit code 2)."""


@dataclass
class HeldFolder:
    """What a run found when it took the folder: notes for its summary, the summary the run
    before it wrote (None if there is none or it is unreadable)."""

    folder: Path
    notes: list[str] = field(default_factory=list)
    previous_summary: dict | None = None


def prepare(folder: Path) -> None:
    """Create the output folder; an :class:`InvalidSettingsError` (exit 2) when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidSettingsError(
            f"--output {folder}: cannot create the folder ({exc.strerror or exc})"
        ) from exc


@contextlib.contextmanager
def hold(folder: Path, summary_file: str) -> Iterator[HeldFolder]:
    """Hold ``folder`` for one run: refuse if a live run holds it, take over a dead run's
    lock, and clear what dead runs left. Raises :class:`InvalidSettingsError` (exit 2) when
    the folder cannot be written and :class:`OutputFolderBusy` when another run holds it."""
    prepare(folder)
    descriptor, stale_owner = _lock(folder)
    try:
        held = HeldFolder(folder, previous_summary=_read_json(folder / summary_file))
        if stale_owner:
            held.notes.append(
                f"took over the output folder from pid {stale_owner}, a run that ended without "
                "releasing it"
            )
        left = remove_temporaries(folder) + remove_temporaries(folder, _OLD_TEMPORARY_NAME)
        if left:
            held.notes.append(
                f"removed {len(left)} temporary file(s) of a run that did not finish: "
                + ", ".join(path.name for path in left)
            )
        yield held
    finally:
        _unlock(folder, descriptor)


def _lock(folder: Path) -> tuple[int, str | None]:
    """Our descriptor of the held lock file, and the pid a dead run left in it (or None)."""
    path = folder / LOCK_FILE
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise InvalidSettingsError(
                f"--output {folder}: cannot write there ({exc.strerror or exc})"
            ) from exc
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(descriptor)
            os.close(descriptor)
            raise OutputFolderBusy(
                f"--output {folder}: another run (pid {owner or 'unknown'}) is writing there; "
                "wait for it to finish or choose another folder"
            ) from None
        if _same_file(descriptor, path):
            break
        os.close(descriptor)  # its holder removed it between our open and flock: again
    stale_owner = _owner(descriptor)
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor, stale_owner


def _unlock(folder: Path, descriptor: int) -> None:
    """Remove the lock file while still holding it, then release it."""
    try:
        (folder / LOCK_FILE).unlink(missing_ok=True)
    finally:
        os.close(descriptor)


def _owner(descriptor: int) -> str | None:
    text = os.pread(descriptor, 64, 0).decode("ascii", "replace").strip()
    return text or None


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.fstat(descriptor).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
