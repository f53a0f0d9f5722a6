"""A packed form of the model store: every compiled model's arrays in one Arrow file.

Loading a model from its skops file takes milliseconds (zip, JSON, a safe rebuild of
the estimator, a sha256); a fleet has thousands of models. The pack holds what
:mod:`scoring.models.kernel` needs to score each compilable model (scaler mean and scale,
support vectors, dual coefficients, rho, gamma, the 1-feature Taylor table), one row per
(Device, Sensor), in a single Arrow IPC file beside ``manifest.json``. It is memory-mapped:
opening it is one read of the file's footer, a model is a few zero-copy slices.

Safety and freshness:

* The file holds arrays and strings only; reading it never executes code.
* It records the sha256 of the manifest it was built from. A pack whose manifest hash
  differs is stale and is not used (:meth:`PackedStore.for_store` returns None and says
  why). Each row also records its model file's sha256, checked against the manifest.
* Models the kernel cannot compile (another estimator) are not in the pack; they are loaded
  from their skops files as before. Guard-band rows of a packed model are re-scored with
  the estimator from its skops file, loaded on demand through the model store (verified).

Build it with :func:`write_pack` after training (``batchscore train`` does; ``batchscore models
pack DIR`` rebuilds one); it reuses rows of the previous pack whose
model file is unchanged, so a partial retrain only loads the new models.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from scoring.data.files import atomic_path
from scoring.errors import UsageError
from scoring.models.kernel import (
    HALF_CELL,
    REACH,
    TAYLOR_DEGREE,
    FastOneClassSVM,
    TaylorTable,
    compile_model,
)
from scoring.models.store import (
    DEFAULT_FEATURES,
    LoadedModel,
    ModelStore,
    ModelStoreError,
)

log = logging.getLogger(__name__)

PACK_NAME = "models.pack.arrow"
PACK_FORMAT = 1
# The kernel parameters a stored table was built with; a pack built differently is stale.
KERNEL_ID = f"taylor-{TAYLOR_DEGREE}-{HALF_CELL}-{REACH}"

_LIST_COLUMNS = ("mean", "scale", "support_vectors", "dual_coef", "table")
_META_PREFIX = b"batchscore."


class PackError(UsageError):
    """A pack file cannot be read or written (names the file)."""


def manifest_sha256(store: ModelStore) -> str:
    """The sha256 of the store's ``manifest.json`` bytes (the pack's freshness key)."""
    try:
        return hashlib.sha256(store.manifest_path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelStoreError(f"{store.manifest_path}: cannot read the manifest ({exc})") from exc


def pack_path(store: ModelStore) -> Path:
    return store.root / PACK_NAME


@dataclass
class _Rows:
    """Column buffers of the pack being built."""

    scalars: dict[str, list[Any]] = field(
        default_factory=lambda: {
            "device": [],
            "sensor": [],
            "version": [],
            "sha256": [],
            "features": [],
            "n_features": [],
            "has_scaler": [],
            "rho": [],
            "gamma": [],
            "table_lo": [],
            "table_width": [],
        }
    )
    lists: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {name: [] for name in _LIST_COLUMNS}
    )

    def add(self, entry: dict[str, Any], arrays: dict[str, Any]) -> None:
        for name in self.scalars:
            self.scalars[name].append(entry[name] if name in entry else arrays[name])
        for name in _LIST_COLUMNS:
            self.lists[name].append(np.asarray(arrays[name], dtype=np.float64).reshape(-1))

    def __len__(self) -> int:
        return len(self.scalars["device"])

    def to_table(self, metadata: dict[str, str]) -> pa.Table:
        columns: dict[str, pa.Array] = {
            "device": pa.array(self.scalars["device"], pa.string()),
            "sensor": pa.array(self.scalars["sensor"], pa.string()),
            "version": pa.array(self.scalars["version"], pa.string()),
            "sha256": pa.array(self.scalars["sha256"], pa.string()),
            "features": pa.array(self.scalars["features"], pa.string()),
            "n_features": pa.array(self.scalars["n_features"], pa.int32()),
            "has_scaler": pa.array(self.scalars["has_scaler"], pa.bool_()),
            "rho": pa.array(self.scalars["rho"], pa.float64()),
            "gamma": pa.array(self.scalars["gamma"], pa.float64()),
            "table_lo": pa.array(self.scalars["table_lo"], pa.float64()),
            "table_width": pa.array(self.scalars["table_width"], pa.float64()),
        }
        for name in _LIST_COLUMNS:
            parts = self.lists[name]
            offsets = np.zeros(len(parts) + 1, dtype=np.int64)
            np.cumsum([part.size for part in parts], out=offsets[1:])
            values = np.concatenate(parts) if parts else np.empty(0)
            columns[name] = pa.LargeListArray.from_arrays(
                pa.array(offsets, pa.int64()), pa.array(values, pa.float64())
            )
        meta = {_META_PREFIX + key.encode(): value.encode() for key, value in metadata.items()}
        return pa.table(columns).replace_schema_metadata(meta)


def _arrays_of(model: FastOneClassSVM) -> dict[str, Any]:
    table = model.table
    return {
        "n_features": model.n_features,
        "has_scaler": model.has_scaler,
        "rho": model.rho,
        "gamma": model.gamma,
        "table_lo": table.lo if table is not None else None,
        "table_width": table.width if table is not None else None,
        "mean": model.mean,
        "scale": model.scale,
        "support_vectors": model.support_vectors,
        "dual_coef": model.dual_coef,
        "table": table.coefs if table is not None else np.empty(0),
    }


@dataclass(frozen=True)
class PackSummary:
    """What :func:`write_pack` did."""

    path: Path
    packed: int  # models in the pack
    reused: int  # of which taken over from the previous pack unchanged
    not_compiled: list[tuple[str, str]]  # loaded from skops at scoring time instead
    failed: list[str]  # models that could not be loaded (one message each)


def write_pack(store: ModelStore, path: str | os.PathLike[str] | None = None) -> PackSummary:
    """Build the pack of ``store`` (default path: ``models.pack.arrow`` in the store).

    Rows of an existing pack whose model file (sha256) is unchanged are reused; other
    models are loaded through the store (verified) and compiled. A model that cannot be
    loaded is left out with a warning (scoring will report it for its partition), never
    stopping the others.
    """
    store.reload()
    target = Path(path) if path is not None else pack_path(store)
    manifest_hash = manifest_sha256(store)
    previous = _open_quietly(target)
    rows = _Rows()
    reused = 0
    not_compiled: list[tuple[str, str]] = []
    failed: list[str] = []
    for device, sensor in store.keys():
        entry = store.entry(device, sensor)
        base = {
            "device": device,
            "sensor": sensor,
            "version": str(entry["version"]),
            "sha256": str(entry["sha256"]),
            "features": json.dumps(list(entry.get("features") or DEFAULT_FEATURES)),
        }
        old = previous.fast_model(device, sensor, base["sha256"]) if previous else None
        if old is not None:
            rows.add(base, _arrays_of(old))
            reused += 1
            continue
        try:
            loaded = store.load(device, sensor)
        except ModelStoreError as exc:
            log.warning("pack: %s", exc)
            failed.append(str(exc))
            continue
        compiled = compile_model(loaded.pipeline)
        if compiled is None:
            not_compiled.append((device, sensor))
            continue
        rows.add(base, _arrays_of(compiled))
    metadata = {
        "format": str(PACK_FORMAT),
        "kernel": KERNEL_ID,
        "manifest_sha256": manifest_hash,
    }
    table = rows.to_table(metadata)
    try:
        with atomic_path(target) as tmp:
            with pa.OSFile(str(tmp), "wb") as sink:
                with pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table, max_chunksize=max(1, table.num_rows))
            os.chmod(tmp, 0o644)
    except OSError as exc:
        raise PackError(f"{target}: cannot write the model pack ({exc})") from exc
    log.info(
        "pack: %d models in %s (%d reused, %d not compilable, %d failed)",
        len(rows),
        target,
        reused,
        len(not_compiled),
        len(failed),
    )
    return PackSummary(target, len(rows), reused, not_compiled, failed)


def _open_quietly(path: Path) -> PackedStore | None:
    if not path.is_file():
        return None
    try:
        return PackedStore.open(path)
    except PackError as exc:
        log.warning("%s; rebuilding it from the model files", exc)
        return None


class PackedStore:
    """A memory-mapped pack: (Device, Sensor) -> compiled model, without reading skops files."""

    def __init__(self, path: Path, table: pa.Table) -> None:
        self.path = path
        meta = {
            key[len(_META_PREFIX) :].decode(): value.decode()
            for key, value in (table.schema.metadata or {}).items()
            if key.startswith(_META_PREFIX)
        }
        self.metadata = meta
        self.manifest_sha256 = meta.get("manifest_sha256", "")
        self._scalars = {
            name: table.column(name).to_pylist()
            for name in ("version", "sha256", "features", "n_features", "has_scaler")
        }
        self._numbers = {name: table.column(name).to_numpy() for name in ("rho", "gamma")}
        self._table_lo = table.column("table_lo").to_pylist()
        self._table_width = table.column("table_width").to_pylist()
        self._lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in _LIST_COLUMNS:
            column = table.column(name)
            # One chunk (as written): use it in place; combine_chunks() would copy it.
            array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            offsets = array.offsets.to_numpy()
            values = array.values.to_numpy(zero_copy_only=True)
            self._lists[name] = (offsets, values)
        keys = zip(
            table.column("device").to_pylist(), table.column("sensor").to_pylist(), strict=True
        )
        self._index = {key: row for row, key in enumerate(keys)}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PackedStore:
        """Memory-map a pack file; :class:`PackError` names it if it is not a valid pack."""
        path = Path(path)
        try:
            source = pa.memory_map(str(path), "r")
            table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowException) as exc:
            raise PackError(f"{path}: not a readable model pack ({exc})") from exc
        meta = table.schema.metadata or {}
        if meta.get(_META_PREFIX + b"format") != str(PACK_FORMAT).encode():
            raise PackError(f"{path}: not a model pack of format {PACK_FORMAT}")
        if meta.get(_META_PREFIX + b"kernel") != KERNEL_ID.encode():
            raise PackError(f"{path}: built for another kernel version (not {KERNEL_ID})")
        try:
            return cls(path, table)
        except (KeyError, ValueError, pa.ArrowException) as exc:
            raise PackError(f"{path}: malformed model pack ({exc})") from exc

    @classmethod
    def for_store(cls, store: ModelStore) -> PackedStore | None:
        """The store's pack if present and built from its current manifest, else None."""
        path = pack_path(store)
        if not path.is_file():
            log.info("%s: no model pack; models load from their files", store.root)
            return None
        try:
            pack = cls.open(path)
            current = manifest_sha256(store)
        except (PackError, ModelStoreError) as exc:
            log.warning("%s; models load from their files", exc)
            return None
        if pack.manifest_sha256 != current:
            log.warning(
                "%s: stale (built from another manifest); models load from their files "
                "until it is rebuilt",
                path,
            )
            return None
        return pack

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, pair: object) -> bool:
        return pair in self._index

    def keys(self) -> Iterable[tuple[str, str]]:
        return self._index.keys()

    def _slice(self, name: str, row: int) -> np.ndarray:
        offsets, values = self._lists[name]
        return values[offsets[row] : offsets[row + 1]]

    def fast_model(
        self,
        device: str,
        sensor: str,
        sha256: str | None = None,
        exact: Any = None,
    ) -> FastOneClassSVM | None:
        """The pair's compiled model, or None if not packed (or packed from another file).

        ``exact`` returns the scikit-learn estimator for guard-band rows; without it, those
        rows raise (use :meth:`load`, which wires the model store in).
        """
        row = self._index.get((device, sensor))
        if row is None or (sha256 is not None and self._scalars["sha256"][row] != sha256):
            return None
        n_features = int(self._scalars["n_features"][row])
        support = self._slice("support_vectors", row).reshape(-1, n_features)
        table = None
        coefs = self._slice("table", row)
        if coefs.size:
            table = TaylorTable(
                lo=float(self._table_lo[row]),
                width=float(self._table_width[row]),
                coefs=coefs.reshape(TAYLOR_DEGREE + 1, -1),
            )
        return FastOneClassSVM(
            mean=self._slice("mean", row),
            scale=self._slice("scale", row),
            support_vectors=support,
            dual_coef=self._slice("dual_coef", row),
            rho=float(self._numbers["rho"][row]),
            gamma=float(self._numbers["gamma"][row]),
            exact=exact if exact is not None else _no_exact_model(device, sensor, self.path),
            has_scaler=bool(self._scalars["has_scaler"][row]),
            table=table,
        )

    def load(self, store: ModelStore, device: str, sensor: str) -> LoadedModel | None:
        """A :class:`LoadedModel` whose ``pipeline`` is the packed, compiled model.

        None when the pair is not packed or its manifest entry names another model file.
        The model file itself is read only if a row needs the exact estimator.
        """
        entry = store.entry(device, sensor)
        sha256 = str(entry["sha256"])

        def exact() -> Any:
            return store.load(device, sensor).pipeline

        model = self.fast_model(device, sensor, sha256, exact)
        if model is None:
            return None
        row = self._index[(device, sensor)]
        return LoadedModel(
            device=device,
            sensor=sensor,
            version=str(self._scalars["version"][row]),
            pipeline=model,
            features=tuple(json.loads(self._scalars["features"][row])),
            file=self.path,
            params=dict(entry.get("params") or {}),
        )


def _no_exact_model(device: str, sensor: str, path: Path):
    def missing() -> Any:
        raise PackError(
            f"Device={device!r} Sensor={sensor!r}: a row needs the exact estimator but the "
            f"model was taken from {path} without its model store"
        )

    return missing
