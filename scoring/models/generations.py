"""Generations of a model store: the last N immutable, verified sets of models, one current.

A training run (:mod:`scoring.steps.promote`) does not overwrite the store: it writes a new
*generation*, and the store's ``manifest.json`` (the only file scoring reads) names it. So a
bad generation is one rollback away, and a single pair can be pinned to an older model.

Layout, beside the store's usual files (:mod:`scoring.models.store`)::

    manifest.json                       the current models: a generation's manifest, with the
                                        pins applied; its header says "generation": N
    models.pack.arrow                   the pack of that manifest (:mod:`scoring.models.pack`)
    generations.json                    the index: every kept generation, and the pins
    generations/000003/manifest.json    generation 3's models, never rewritten
    generations/000003/summary.json     why (the training summary: every gate decision)
    generations/000003/models.pack.arrow  its pack, when one was built (copied back on rollback)
    <device>/<sensor>.<version>.model.json  model files (.skops: other estimators, earlier
                                            releases), named by version: shared by generations

Rules:

* **Immutable**: a generation's manifest is written once; model files are named by their
  version (training time + content hash), so a file never changes under a name.
* **Verified**: before a generation becomes current (commit, rollback) every file its manifest
  lists is read and its sha256 compared with the manifest's; one missing or changed file and
  nothing is switched (the error names every bad file).
* **Atomic switch**: the current generation changes with one write of ``manifest.json`` (an
  ``os.replace`` locally, one blob upload on Blob storage), after the generation's files, its
  manifest and the index are in place. A crash before it leaves the old generation current.
* **Pins**: ``pin(device, sensor, to=G)`` serves that pair with generation G's model whatever
  generation is current, until ``unpin``; pins survive new generations and rollbacks.
* **Keep N**: after a commit the oldest generations beyond N are dropped (never the current
  one or a pinned one), then every model file no kept generation (nor the current manifest)
  names is deleted.

One writer at a time (the training pipeline's promote step, or an operator's command): the
index is read, changed and written back. Storage is anything with the small file interface
:class:`StoreFiles`: a local folder (:class:`LocalFiles`, also an Azure ML mount of the
models container) or a Blob container (``batchscore.cloud.blob_generations``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from scoring.data.files import atomic_path
from scoring.models.store import (
    GENERATIONS_INDEX,
    MANIFEST_NAME,
    MODEL_SUFFIXES,
    ModelStore,
    ModelStoreError,
    manifest_text,
)

log = logging.getLogger(__name__)

GENERATIONS_FOLDER = "generations"
INDEX_FORMAT = 1
DEFAULT_KEEP = 5
PACK_NAME = "models.pack.arrow"  # scoring.models.pack.PACK_NAME (not imported: pyarrow)
SUMMARY_NAME = "summary.json"

Pair = tuple[str, str]


class GenerationError(ModelStoreError):
    """A generation cannot be read, written or switched to (names it and why)."""


class StoreFiles(Protocol):
    """The files of a store, by POSIX path relative to its root."""

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when there is no such file."""

    def write(self, name: str, data: bytes) -> None:
        """Write the whole file at once (readers see the old bytes or the new, never a part)."""

    def delete(self, name: str) -> None:
        """Remove the file (no error when it is already gone)."""

    def names(self, under: str = "") -> list[str]:
        """Every file under the folder ``under`` (all when empty), sorted."""

    def where(self, name: str = "") -> str:
        """The file (or the store) as a user would name it, for messages."""


class LocalFiles:
    """A store folder on disk (or an Azure ML mount of the models container)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def read(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise GenerationError(f"{self.root / name}: cannot read ({exc})") from exc

    def write(self, name: str, data: bytes) -> None:
        try:
            with atomic_path(self.root / name) as tmp:
                tmp.write_bytes(data)
                os.chmod(tmp, 0o644)
        except OSError as exc:
            raise GenerationError(f"{self.root / name}: cannot write ({exc})") from exc

    def delete(self, name: str) -> None:
        path = self.root / name
        path.unlink(missing_ok=True)
        for folder in path.parents:  # folders left empty go too (as they do on Blob storage)
            if folder == self.root or not folder.is_relative_to(self.root):
                break
            try:
                folder.rmdir()
            except OSError:
                break

    def names(self, under: str = "") -> list[str]:
        base = self.root / under if under else self.root
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )

    def where(self, name: str = "") -> str:
        return str(self.root / name) if name else str(self.root)


@dataclass(frozen=True)
class Generation:
    """One entry of the index: what ``batchscore models history`` lists."""

    generation: int
    created: str
    pairs: int
    promoted: int = 0
    kept: int = 0
    rejected: int = 0
    added: int = 0
    source: str = "training"
    manifest_sha256: str = ""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Generation:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


def folder_of(generation: int) -> str:
    return f"{GENERATIONS_FOLDER}/{generation:06d}"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_manifest(data: bytes, where: str) -> tuple[dict[str, Any], dict[Pair, dict[str, Any]]]:
    """(header, entries) of manifest bytes."""
    try:
        document = json.loads(data.decode("utf-8"))
        entries = {(str(e["device"]), str(e["sensor"])): e for e in document["models"]}
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise GenerationError(f"{where}: not a readable model store manifest ({exc})") from exc
    header = {k: v for k, v in document.items() if k != "models"}
    return header, entries


class Generations:
    """The generations of one store (see the module docstring)."""

    def __init__(
        self,
        files: StoreFiles,
        *,
        keep: int = DEFAULT_KEEP,
        repack: Callable[[], None] | None = None,
    ) -> None:
        if keep < 1:
            raise GenerationError(f"keep {keep}: a store keeps at least 1 generation")
        self.files = files
        self.keep = keep
        #: rebuilds the root pack from the root manifest (local stores); None: only copied
        self.repack = repack

    @classmethod
    def local(cls, root: str | os.PathLike[str], *, keep: int = DEFAULT_KEEP) -> Generations:
        """The generations of a store folder; its pack is rebuilt after every switch."""

        def repack() -> None:
            from scoring.models.pack import write_pack

            write_pack(ModelStore(root))

        return cls(LocalFiles(root), keep=keep, repack=repack)

    # ------------------------------------------------------------------------------ reading

    def _index(self) -> dict[str, Any]:
        data = self.files.read(GENERATIONS_INDEX)
        if data is None:
            return {"format": INDEX_FORMAT, "generations": [], "pins": []}
        try:
            index = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GenerationError(
                f"{self.files.where(GENERATIONS_INDEX)}: unreadable ({exc})"
            ) from exc
        if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
            raise GenerationError(
                f"{self.files.where(GENERATIONS_INDEX)}: not a generations index of format "
                f"{INDEX_FORMAT}"
            )
        index.setdefault("generations", [])
        index.setdefault("pins", [])
        return index

    def _write_index(self, index: dict[str, Any]) -> None:
        self.files.write(GENERATIONS_INDEX, (json.dumps(index, indent=1) + "\n").encode())

    def list(self) -> list[Generation]:
        """The kept generations, oldest first."""
        return [Generation.from_dict(g) for g in self._index()["generations"]]

    def pins(self) -> dict[Pair, int]:
        return {(p["device"], p["sensor"]): int(p["generation"]) for p in self._index()["pins"]}

    def current(self) -> int | None:
        """The generation the store's manifest names (None: no manifest, or one written
        outside generations, e.g. by ``batchscore train``)."""
        data = self.files.read(MANIFEST_NAME)
        if data is None:
            return None
        header, _ = _parse_manifest(data, self.files.where(MANIFEST_NAME))
        value = header.get("generation")
        return int(value) if isinstance(value, int) else None

    def history(self) -> list[dict[str, Any]]:
        """Every kept generation as a dict, oldest first, with ``current`` (bool) and
        ``pinned`` (how many pairs are pinned to it)."""
        current, pins = self.current(), list(self.pins().values())
        return [
            {**asdict(g), "current": g.generation == current, "pinned": pins.count(g.generation)}
            for g in self.list()
        ]

    def manifest_of(self, generation: int) -> dict[Pair, dict[str, Any]]:
        """The models of one kept generation."""
        return self._generation_manifest(generation)[1]

    def _generation_manifest(self, generation: int) -> tuple[bytes, dict[Pair, dict[str, Any]]]:
        known = [g.generation for g in self.list()]
        if generation not in known:
            shown = ", ".join(str(g) for g in known) or "none yet"
            raise GenerationError(
                f"generation {generation} is not in {self.files.where()} (kept generations: "
                f"{shown})"
            )
        name = f"{folder_of(generation)}/{MANIFEST_NAME}"
        data = self.files.read(name)
        if data is None:
            raise GenerationError(f"{self.files.where(name)}: missing (generation {generation})")
        return data, _parse_manifest(data, self.files.where(name))[1]

    def verify(self, entries: Mapping[Pair, Mapping[str, Any]]) -> list[str]:
        """Every problem with the files ``entries`` list: missing, or bytes whose sha256 is not
        the recorded one. [] when all are as recorded."""
        problems = []
        for (device, sensor), entry in sorted(entries.items()):
            name = str(entry["file"])
            data = self.files.read(name)
            if data is None:
                problems.append(f"Device={device!r} Sensor={sensor!r}: {name} is missing")
            elif hashlib.sha256(data).hexdigest() != entry["sha256"]:
                problems.append(f"Device={device!r} Sensor={sensor!r}: {name} was changed")
        return problems

    def _require_verified(self, generation: int, entries: Mapping[Pair, Any]) -> None:
        problems = self.verify(entries)
        if problems:
            raise GenerationError(
                f"generation {generation} in {self.files.where()} is not intact "
                f"({len(problems)} problem(s)), nothing switched: " + "; ".join(problems[:20])
            )

    # ------------------------------------------------------------------------------ writing

    def commit(
        self,
        entries: Mapping[Pair, Mapping[str, Any]],
        new_files: Iterable[tuple[str, bytes]] = (),
        *,
        summary: Mapping[str, Any] | None = None,
        counts: Mapping[str, int] | None = None,
        source: str = "training",
    ) -> Generation:
        """Make ``entries`` (every pair's model) the next generation and the current one.

        ``new_files`` (path in the store, bytes) are the model files not yet in the store;
        ``summary`` is written beside the generation's manifest; ``counts`` (promoted, kept,
        rejected, added) go into the index. A store whose manifest predates generations has
        it adopted first as a generation of its own, so it can be rolled back to.
        """
        for name, data in new_files:
            if self.files.read(name) != data:
                self.files.write(name, data)
        index = self._adopt_untracked(self._index())
        number = max((int(g["generation"]) for g in index["generations"]), default=0) + 1
        self._require_verified(number, entries)
        text = manifest_text(entries, generation=number).encode("utf-8")
        folder = folder_of(number)
        self.files.write(f"{folder}/{MANIFEST_NAME}", text)
        if summary is not None:
            self.files.write(
                f"{folder}/{SUMMARY_NAME}",
                (
                    json.dumps({**summary, "generation": number}, indent=1, default=str) + "\n"
                ).encode(),
            )
        generation = Generation(
            generation=number,
            created=_now(),
            pairs=len(entries),
            source=source,
            manifest_sha256=hashlib.sha256(text).hexdigest(),
            **{k: int(v) for k, v in (counts or {}).items() if k in _COUNTS},
        )
        index["generations"].append(asdict(generation))
        self._write_index(index)
        self._switch(number, text, entries, index)
        self.prune()
        return generation

    def rollback(self, to: int) -> Generation:
        """Make kept generation ``to`` current again (verified first; pins still apply)."""
        text, entries = self._generation_manifest(to)
        self._require_verified(to, entries)
        self._switch(to, text, entries, self._index())
        return next(g for g in self.list() if g.generation == to)

    def pin(self, device: str, sensor: str, to: int) -> dict[str, Any]:
        """Serve (device, sensor) with generation ``to``'s model until :meth:`unpin`."""
        entry = self.manifest_of(to).get((device, sensor))
        if entry is None:
            raise GenerationError(
                f"generation {to} has no model for Device={device!r} Sensor={sensor!r}"
            )
        self._require_verified(to, {(device, sensor): entry})
        index = self._index()
        index["pins"] = [
            p for p in index["pins"] if (p["device"], p["sensor"]) != (device, sensor)
        ] + [{"device": device, "sensor": sensor, "generation": to}]
        self._write_index(index)
        self._switch_current(index)
        return entry

    def unpin(self, device: str, sensor: str) -> bool:
        """Serve (device, sensor) from the current generation again; False if it was not
        pinned."""
        index = self._index()
        kept = [p for p in index["pins"] if (p["device"], p["sensor"]) != (device, sensor)]
        if len(kept) == len(index["pins"]):
            return False
        index["pins"] = kept
        self._write_index(index)
        self._switch_current(index)
        return True

    def _switch_current(self, index: dict[str, Any]) -> None:
        current = self.current()
        if current is None:
            raise GenerationError(
                f"{self.files.where()}: no current generation to apply the pins to (train one "
                "through the training pipeline first)"
            )
        text, entries = self._generation_manifest(current)
        self._switch(current, text, entries, index)

    def _switch(
        self,
        generation: int,
        text: bytes,
        entries: Mapping[Pair, Mapping[str, Any]],
        index: Mapping[str, Any],
    ) -> None:
        """Write the store's manifest: generation ``generation``'s, with the pins applied."""
        pins = [p for p in index["pins"]]
        served = dict(entries)
        for pin in pins:
            pinned = self.manifest_of(int(pin["generation"])).get((pin["device"], pin["sensor"]))
            if pinned is not None:
                served[(pin["device"], pin["sensor"])] = pinned
        if pins:
            text = manifest_text(served, generation=generation, pins=pins).encode("utf-8")
        folder = folder_of(generation)
        pack = None if pins else self.files.read(f"{folder}/{PACK_NAME}")
        if pack is not None:
            self.files.write(PACK_NAME, pack)  # first: the old manifest ignores it (stale)
        elif self.repack is None:
            self.files.delete(PACK_NAME)  # a pack of another manifest would only be ignored
        self.files.write(MANIFEST_NAME, text)  # the switch
        log.info("%s: generation %d is current", self.files.where(), generation)
        if pack is None and self.repack is not None:
            self.repack()
            if not pins:
                built = self.files.read(PACK_NAME)
                if built is not None:
                    self.files.write(f"{folder}/{PACK_NAME}", built)

    def _adopt_untracked(self, index: dict[str, Any]) -> dict[str, Any]:
        """A manifest written outside generations becomes a generation of its own."""
        data = self.files.read(MANIFEST_NAME)
        if data is None:
            return index
        header, entries = _parse_manifest(data, self.files.where(MANIFEST_NAME))
        known = {int(g["generation"]) for g in index["generations"]}
        if header.get("generation") in known or not entries:
            return index  # (a manifest naming a generation this index lacks was copied in)
        number = max((int(g["generation"]) for g in index["generations"]), default=0) + 1
        text = manifest_text(entries, generation=number).encode("utf-8")
        self.files.write(f"{folder_of(number)}/{MANIFEST_NAME}", text)
        adopted = Generation(
            generation=number,
            created=str(header.get("updated_at") or _now()),
            pairs=len(entries),
            source="adopted",
            manifest_sha256=hashlib.sha256(text).hexdigest(),
        )
        index["generations"].append(asdict(adopted))
        self._write_index(index)
        log.info("%s: its models became generation %d", self.files.where(), number)
        return index

    def prune(self) -> list[int]:
        """Drop the generations beyond the newest ``keep`` (never the current or a pinned
        one) and every model file no remaining generation or the manifest names; returns the
        generations dropped."""
        index = self._index()
        numbers = sorted(int(g["generation"]) for g in index["generations"])
        protected = {self.current(), *(int(p["generation"]) for p in index["pins"])}
        keep = set(numbers[-self.keep :]) | (protected & set(numbers))
        dropped = [n for n in numbers if n not in keep]
        if dropped:
            index["generations"] = [g for g in index["generations"] if g["generation"] in keep]
            self._write_index(index)
            for number in dropped:
                for name in self.files.names(folder_of(number)):
                    self.files.delete(name)
        named: set[str] = set()
        for number in keep:
            named |= {str(e["file"]) for e in self.manifest_of(number).values()}
        current = self.files.read(MANIFEST_NAME)
        if current is not None:
            named |= {
                str(e["file"])
                for e in _parse_manifest(current, self.files.where(MANIFEST_NAME))[1].values()
            }
        for name in self.files.names():
            if name.endswith(MODEL_SUFFIXES) and name not in named:
                self.files.delete(name)
        if dropped:
            log.info("%s: dropped generations %s", self.files.where(), dropped)
        return dropped


_COUNTS = ("promoted", "kept", "rejected", "added")
