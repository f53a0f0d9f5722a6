"""A packed form of the model store: every compiled model's arrays in one Arrow file.

Loading a model from its file takes milliseconds (JSON or a zip, a safe rebuild of the
estimator, a sha256); a fleet has up to hundreds of thousands of models. The pack holds what
:mod:`scoring.models.kernel` needs to score each compilable model (scaler mean and scale,
support vectors, dual coefficients, rho, gamma, the 1-feature Taylor table, the guard band),
one row per (Device, Sensor), in a single Arrow IPC file beside ``manifest.json``. It is
memory-mapped: opening it reads the file's footer; a model is a few zero-copy slices.

Memory bounded by what is scored, not by the fleet: rows are sorted by a 64-bit hash of the
pair (``key_hash``), found by binary search in the memory-mapped column; nothing per model is
turned into a Python object until it is used, and the manifest is hashed (streamed), never
parsed, while the pack serves.

The Taylor tables are stored cell-major (``n_cells x (TAYLOR_DEGREE + 1)`` per model), so the
whole table column is one ``(total cells, degree + 1)`` array: scoring many pairs at once gathers
each row's coefficients with one index (:mod:`scoring.models.fleet_kernel`).

What is verified, and when:

* at open: the file is a pack of this format and kernel, built from the store's current
  ``manifest.json`` (its sha256); otherwise it is not used (with a warning) and models load
  from their model files;
* at a row's first use: the row's checksum, recorded when it was written, over its numbers,
  arrays and strings (sums and XORs mod 2**64: any flipped bit shows), checked vectorised for
  all the rows a shard needs; a damaged row is refused with a warning and that pair loads from
  its model file;
* the model files themselves are read (and their sha256 checked against the manifest) only
  when a row needs the exact estimator (its guard band) or is not in the pack;
  ``batchscore models verify`` checks every file.

Build it with :func:`write_pack` after training (``batchscore train`` does, from the models it
has just fitted; ``batchscore models pack DIR`` rebuilds one); a rebuild reuses the rows of
the previous pack whose model file (sha256) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.data.files import atomic_path
from scoring.errors import UsageError
from scoring.models import baseline
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
PACK_FORMAT = 2
# The kernel parameters a stored table was built with; a pack built differently is stale.
KERNEL_ID = f"taylor-{TAYLOR_DEGREE}-{HALF_CELL}-{REACH}"
COEFFICIENTS = TAYLOR_DEGREE + 1

_LIST_COLUMNS = ("mean", "scale", "support_vectors", "dual_coef", "table")
_TEXT_COLUMNS = ("version", "sha256", "features")
_FLOAT_COLUMNS = ("rho", "gamma", "guard", "table_lo", "table_width")
_META_PREFIX = b"batchscore."
_HASH_CHUNK = 1 << 20


class PackError(UsageError):
    """A pack file cannot be read or written (names the file)."""


def manifest_sha256(store: ModelStore) -> str:
    """The sha256 of the store's ``manifest.json`` bytes (the pack's freshness key), streamed."""
    digest = hashlib.sha256()
    try:
        with open(store.manifest_path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ModelStoreError(f"{store.manifest_path}: cannot read the manifest ({exc})") from exc
    return digest.hexdigest()


def pack_path(store: ModelStore) -> Path:
    return store.root / PACK_NAME


def pair_hash(device: str, sensor: str) -> int:
    """The 64-bit key a pair's row is sorted and found by."""
    raw = hashlib.blake2b(f"{device}\0{sensor}".encode(), digest_size=8).digest()
    return int.from_bytes(raw, "little")


_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd multipliers spread each part over all 64 bits
_CHECK_BLOCK = 4096


def _segment_sums(offsets: np.ndarray, words: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per row, the sum and the XOR of its words ``words[offsets[r]:offsets[r+1]]`` (mod 2**64),
    mixed: any flipped bit changes it (``rows`` ascending). Words narrower than 64 bits (text's
    bytes) are summed in 64 bits as they are read: the sums of the words widened first.

    Rows that lie together (a whole pack being written) are reduced in place over the
    memory-mapped words, one pass each, nothing copied. Rows far apart (those a shard scores,
    checked before first use) are copied together first: reduced in place, the words between
    them were read too, and ``reduceat``'s last reduction ran to the column's end for every
    block of rows: 2.1 s of a 100,000-row pack's checksums, 0.14 s to check five of its rows."""
    result = np.zeros(len(rows), dtype=np.uint64)
    starts, ends = offsets[rows], offsets[rows + 1]
    filled = ends > starts  # rows holding any word
    if not filled.any():
        return result
    starts, ends = starts[filled], ends[filled]
    lengths = ends - starts
    if ends[-1] - starts[0] > 2 * lengths.sum():
        spans = zip(starts.tolist(), ends.tolist(), strict=True)
        words = np.concatenate([words[a:b] for a, b in spans])
        firsts = np.cumsum(lengths) - lengths  # each row's words now follow the one before
        sums = np.add.reduceat(words, firsts, dtype=np.uint64)
        xors = np.bitwise_xor.reduceat(words, firsts)
    else:
        # reduceat reads bounds[k]:bounds[k+1] (the odd ones: between two rows, dropped) and
        # from its last bound to the end of ``words``: so ``words`` ends with the last row.
        bounds = np.empty(2 * len(starts), dtype=np.int64)
        bounds[0::2], bounds[1::2] = starts, ends
        words = words[: bounds[-1]]
        sums = np.add.reduceat(words, bounds[:-1], dtype=np.uint64)[0::2]
        xors = np.bitwise_xor.reduceat(words, bounds[:-1])[0::2]
    result[filled] = sums * _MIX + xors.astype(np.uint64)
    return result


def content_checksums(columns: Mapping[str, pa.Array], rows: np.ndarray) -> np.ndarray:
    """The checksum of each row's content (numbers, arrays, version, sha256, features): one
    implementation for writing the pack and for checking rows of it, vectorised over ``rows``
    (in blocks, so a check costs what the rows hold, not the fleet)."""
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    out = np.empty(len(rows), dtype=np.uint64)
    for start in range(0, len(rows), _CHECK_BLOCK):
        block = rows[order[start : start + _CHECK_BLOCK]]
        total = np.zeros(len(block), dtype=np.uint64)
        for number, name in enumerate((*_LIST_COLUMNS, *_TEXT_COLUMNS), start=1):
            array = columns[name]
            if name in _TEXT_COLUMNS:  # large_string: int64 offsets, then the UTF-8 bytes
                buffers = array.buffers()
                offsets = np.frombuffer(buffers[1], dtype=np.int64)[
                    array.offset : array.offset + len(array) + 1
                ]
                words = np.frombuffer(buffers[2] or b"", dtype=np.uint8)
            else:
                offsets = array.offsets.to_numpy(zero_copy_only=True)
                words = array.values.to_numpy(zero_copy_only=True).view(np.uint64)
            total += _segment_sums(offsets, words, block) * np.uint64(2 * number + 1)
        for number, name in enumerate((*_FLOAT_COLUMNS, "n_features"), start=64):
            values = columns[name].to_numpy(zero_copy_only=True)[block]
            total += values.astype(np.float64).view(np.uint64) * np.uint64(2 * number + 1)
        flags = columns["has_scaler"].to_numpy(zero_copy_only=False)[block]
        total += flags.astype(np.uint64) * np.uint64(257)
        out[order[start : start + len(block)]] = total
    return out


@dataclass(frozen=True)
class PackRow:
    """A compiled model as its row of the pack (all but the columns that name the model):
    made where the model is compiled, so training's workers make their models' rows and the
    one process that writes the pack only gathers them."""

    scalars: dict[str, Any]
    arrays: dict[str, np.ndarray]
    #: the baseline column's value (:func:`baseline.packed`); None: taken from the entry
    baseline: np.ndarray | None = None


def pack_row(model: FastOneClassSVM, baseline_values: np.ndarray | None = None) -> PackRow:
    """``model``'s row of the pack; ``baseline_values``: its entry's :func:`baseline.packed`."""
    table = model.table
    scalars = {
        "n_features": model.n_features,
        "has_scaler": model.has_scaler,
        "rho": model.rho,
        "gamma": model.gamma,
        "guard": model.guard,
        "table_lo": table.lo if table is not None else np.nan,
        "table_width": table.width if table is not None else np.nan,
    }
    arrays = {
        "mean": np.asarray(model.mean, dtype=np.float64).reshape(-1),
        "scale": np.asarray(model.scale, dtype=np.float64).reshape(-1),
        "support_vectors": np.asarray(model.support_vectors, dtype=np.float64).reshape(-1),
        "dual_coef": np.asarray(model.dual_coef, dtype=np.float64).reshape(-1),
        # cell-major: row j holds cell j's coefficients of degree 0..TAYLOR_DEGREE
        "table": table.coefs.T.reshape(-1) if table is not None else np.empty(0),  # (a copy)
    }
    return PackRow(scalars, arrays, baseline_values)


@dataclass(frozen=True)
class ParkedArrays:
    """The list columns of a batch of rows, one float64 array after another in one file
    (:func:`park_arrays`): where each part starts, row by row and column by column."""

    path: str
    offsets: np.ndarray


def park_arrays(rows: list[PackRow], path: Path) -> ParkedArrays | None:
    """Write the list columns of ``rows`` to the new file ``path`` and take them out of the
    rows, which then pickle small; :func:`unpark_arrays` reads them back. None (the
    rows untouched) if the file cannot be written: the arrays then travel with the rows.

    Training's workers park each task's rows: returned through the pool's pipe, a task of
    500 models was 5.4 MB to pickle, pass through a 64 KB pipe and unpickle, the worker
    waiting on the parent (whose reading thread competes for the GIL) between tasks: 0.45 s
    of each worker's time over 5,000 models, 0.2 s parked."""
    parts = [row.arrays[name] for row in rows for name in _LIST_COLUMNS]
    try:
        with open(path, "xb") as sink:
            for part in parts:
                sink.write(np.ascontiguousarray(part, dtype=np.float64).data)
    except OSError as exc:
        log.debug("pack rows stay in memory: cannot write %s (%s)", path, exc)
        Path(path).unlink(missing_ok=True)
        return None
    for row in rows:
        row.arrays.clear()
    return ParkedArrays(str(path), _offsets(parts))


def unpark_arrays(rows: list[PackRow], parked: ParkedArrays) -> None:
    """Give ``rows`` (those given to :func:`park_arrays`, in order) their list columns back:
    the parked file read into one anonymous memory map, each row a view of its part, and the
    file removed at once.

    Read, not mapped: a mapped file stays until the pack is written, its pages dirty, so the
    manifest's flush and the kernel's writeback put every parked byte on disk (1.2 GB at
    100,000 models) for nothing; a file removed seconds after it was written is dropped
    unwritten. The map is the batch's own, so its memory is handed back when :func:`write_pack`
    has copied its last row (a block of a few megabytes from malloc could sit in a heap that
    never shrinks while anything above it lives)."""
    size = int(parked.offsets[-1]) * 8
    values = np.empty(0)
    with open(parked.path, "rb") as source:
        if size:
            buffer = mmap.mmap(-1, size)
            if source.readinto(buffer) != size:
                raise OSError(f"{parked.path}: shorter than the {size} bytes parked")
            values = np.frombuffer(buffer, dtype=np.float64)
    os.unlink(parked.path)
    offsets, position = parked.offsets, 0
    for row in rows:
        for name in _LIST_COLUMNS:
            row.arrays[name] = values[offsets[position] : offsets[position + 1]]
            position += 1


def _offsets(parts: list[np.ndarray]) -> np.ndarray:
    """Where each of ``parts`` starts once they are joined end to end, then their total."""
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([part.size for part in parts], out=offsets[1:])
    return offsets


@dataclass
class _Rows:
    """Column buffers of the pack being built, one entry per model."""

    scalars: list[dict[str, Any]] = field(default_factory=list)
    arrays: list[dict[str, np.ndarray]] = field(default_factory=list)

    def add(self, names: Mapping[str, Any], row: PackRow, entry: Mapping[str, Any]) -> None:
        """``row`` under the columns ``names`` gives; its baseline as made with the row, else
        from its manifest ``entry``."""
        scalars = dict(row.scalars)
        scalars.update(names)
        scalars[baseline.PACK_COLUMN] = (
            row.baseline if row.baseline is not None else baseline.packed(entry)
        )
        self.scalars.append(scalars)
        self.arrays.append(row.arrays)

    def __len__(self) -> int:
        return len(self.scalars)

    def to_table(self, metadata: dict[str, str]) -> pa.Table:
        order = sorted(range(len(self)), key=lambda i: self.scalars[i]["key_hash"])
        scalars = [self.scalars[i] for i in order]
        arrays = [self.arrays[i] for i in order]

        def column(name: str, kind: pa.DataType) -> pa.Array:
            return pa.array([row[name] for row in scalars], kind)

        columns: dict[str, pa.Array] = {
            "key_hash": column("key_hash", pa.uint64()),
            "device": column("device", pa.large_string()),
            "sensor": column("sensor", pa.large_string()),
            "version": column("version", pa.large_string()),
            "sha256": column("sha256", pa.large_string()),
            "features": column("features", pa.large_string()),
            "n_features": column("n_features", pa.int32()),
            "has_scaler": column("has_scaler", pa.bool_()),
        }
        for name in _FLOAT_COLUMNS:
            columns[name] = column(name, pa.float64())
        for name in _LIST_COLUMNS:
            columns[name] = _list_column(arrays, name)
        columns[baseline.PACK_COLUMN] = baseline.pack_column(scalars)  # not in the checksum
        columns["checksum"] = pa.array(
            content_checksums(columns, np.arange(len(scalars))), pa.uint64()
        )
        meta = {_META_PREFIX + key.encode(): value.encode() for key, value in metadata.items()}
        return pa.table(columns).replace_schema_metadata(meta)


def _list_column(arrays: list[dict[str, np.ndarray]], name: str) -> pa.Array:
    """The list column ``name`` of ``arrays`` (one dict per row), each row's part let go as it
    is copied in: the Taylor tables are most of the pack (760 MB at 100,000 models), and
    concatenating them held every part beside the column."""
    offsets = _offsets([row[name] for row in arrays])
    values = np.empty(int(offsets[-1]), dtype=np.float64)
    for index, row in enumerate(arrays):
        values[offsets[index] : offsets[index + 1]] = row.pop(name)
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(values))


@dataclass(frozen=True)
class PackSummary:
    """What :func:`write_pack` did."""

    path: Path
    packed: int  # models in the pack
    reused: int  # of which taken over from the previous pack unchanged
    not_compiled: list[tuple[str, str]]  # loaded from their files at scoring time instead
    failed: list[str]  # models that could not be loaded (one message each)


def write_pack(
    store: ModelStore,
    path: str | os.PathLike[str] | None = None,
    *,
    compiled: dict[tuple[str, str], tuple[str, PackRow | None]] | None = None,
) -> PackSummary:
    """Build the pack of ``store`` (default path: ``models.pack.arrow`` in the store).

    ``compiled`` maps a pair to (the sha256 of the file it was just saved as, its model's
    :class:`PackRow`, or None when it does not compile): training hands over the models it has
    just fitted, as rows its workers made, so they are not read back from their files, and
    each is taken out of ``compiled`` as it is packed; the manifest's sha256 stays the source
    of truth (a pair whose manifest entry names another file is loaded from that file). Rows
    of an existing pack whose model file is unchanged are reused; other models are loaded
    through the store (verified) and compiled. A model that cannot be loaded is left out with
    a warning, never stopping the others. The manifest is read again from disk first, unless
    ``compiled`` is given: training has just written it from the very entries the store holds
    (reading 100,000 entries back cost 0.4 s of a 5,000-model training run).
    """
    if compiled is None:
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
        sha256 = str(entry["sha256"])
        base = {
            "key_hash": pair_hash(device, sensor),
            "device": device,
            "sensor": sensor,
            "version": str(entry["version"]),
            "sha256": sha256,
            "features": _features_text(entry),
        }
        fresh = compiled.pop((device, sensor), None) if compiled else None
        if fresh is not None and fresh[0] == sha256:
            if fresh[1] is None:
                not_compiled.append((device, sensor))
                continue
            rows.add(base, fresh[1], entry)
            continue
        old = previous.fast_model(device, sensor, sha256) if previous else None
        if old is not None:
            rows.add(base, pack_row(old), entry)
            reused += 1
            continue
        try:
            loaded = store.load(device, sensor)
        except ModelStoreError as exc:
            log.warning("pack: %s", exc)
            failed.append(str(exc))
            continue
        model = compile_model(loaded.pipeline)
        if model is None:
            not_compiled.append((device, sensor))
            continue
        rows.add(base, pack_row(model), entry)
    metadata = {"format": str(PACK_FORMAT), "kernel": KERNEL_ID, "manifest_sha256": manifest_hash}
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


@lru_cache(maxsize=64)
def _features_json(features: tuple[str, ...]) -> str:
    return json.dumps(list(features))


def _features_text(entry: Mapping[str, Any]) -> str:
    """The ``features`` column: the entry's feature names as JSON (the same few lists for
    every model of a store: made once each)."""
    return _features_json(tuple(entry.get("features") or DEFAULT_FEATURES))


def _open_quietly(path: Path) -> PackedStore | None:
    if not path.is_file():
        return None
    try:
        return PackedStore.open(path)
    except PackError as exc:
        log.warning("%s; rebuilding it from the model files", exc)
        return None


def _single_chunk(column: pa.ChunkedArray) -> pa.Array:
    """The column's one chunk (as written): used in place; combine_chunks() would copy it."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


class PackedStore:
    """A memory-mapped pack: (Device, Sensor) -> compiled model, without reading model files."""

    def __init__(self, path: Path, table: pa.Table) -> None:
        self.path = path
        meta = {
            key[len(_META_PREFIX) :].decode(): value.decode()
            for key, value in (table.schema.metadata or {}).items()
            if key.startswith(_META_PREFIX)
        }
        self.metadata = meta
        self.manifest_sha256 = meta.get("manifest_sha256", "")
        self._table = table
        self.key_hash = _single_chunk(table.column("key_hash")).to_numpy(zero_copy_only=True)
        self.numbers = {
            name: _single_chunk(table.column(name)).to_numpy(zero_copy_only=True)
            for name in (*_FLOAT_COLUMNS, "n_features", "checksum")
        }
        self._columns = {
            name: _single_chunk(table.column(name))
            for name in (
                *_LIST_COLUMNS,
                *_TEXT_COLUMNS,
                *_FLOAT_COLUMNS,
                "n_features",
                "has_scaler",
            )
        }
        self._strings = {
            name: _single_chunk(table.column(name))
            for name in ("device", "sensor", "version", "sha256", "features")
        }
        self._has_scaler = _single_chunk(table.column("has_scaler"))
        self.lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in _LIST_COLUMNS:
            array = _single_chunk(table.column(name))
            offsets = array.offsets.to_numpy(zero_copy_only=True)
            values = array.values.to_numpy(zero_copy_only=True)
            self.lists[name] = (offsets, values)
        self._verified: dict[int, bool] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PackedStore:
        """Memory-map a pack file; :class:`PackError` names it if it is not a valid pack."""
        path = Path(path)
        try:
            source = pa.memory_map(str(path), "r")
            table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowException) as exc:
            raise PackError(f"{path}: not a readable model pack ({exc})") from exc
        try:
            # Offsets and string data are used as they are mapped (zero-copy): one out of range
            # would make a worker read outside the file (IndexError, or a crash). Arrow's full
            # validation checks every offset and every string before anything is served.
            table.validate(full=True)
        except pa.ArrowException as exc:
            raise PackError(f"{path}: damaged model pack ({exc})") from exc
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
                "until it is rebuilt (batchscore models pack)",
                path,
            )
            return None
        return pack

    def __len__(self) -> int:
        return len(self.key_hash)

    def __contains__(self, pair: object) -> bool:
        return isinstance(pair, tuple) and len(pair) == 2 and self.row(*pair) is not None

    def keys(self) -> Iterable[tuple[str, str]]:
        devices, sensors = self._strings["device"], self._strings["sensor"]
        return zip(devices.to_pylist(), sensors.to_pylist(), strict=True)

    # --- finding rows -----------------------------------------------------------------------

    def row(self, device: str, sensor: str) -> int | None:
        """The pair's row, or None if it is not packed."""
        found = self.rows([device], [sensor])[0]
        return None if found < 0 else int(found)

    def rows(self, devices: list[str], sensors: list[str]) -> np.ndarray:
        """Rows of many pairs (-1 where not packed): binary search on the sorted hashes, then
        the names compared (a hash collision is never taken for the pair), all pairs at once;
        only a pair whose hash is shared walks the rows of that hash."""
        hashes = np.fromiter(
            (pair_hash(d, s) for d, s in zip(devices, sensors, strict=True)),
            dtype=np.uint64,
            count=len(devices),
        )
        result = np.full(len(devices), -1, dtype=np.int64)
        if not len(self.key_hash):
            return result
        found = np.searchsorted(self.key_hash, hashes)
        found[found >= len(self.key_hash)] = 0
        hit = np.flatnonzero(self.key_hash[found] == hashes)
        named = self._names_at(found[hit], [devices[i] for i in hit], [sensors[i] for i in hit])
        result[hit[named]] = found[hit[named]]
        for position in hit[~named]:  # the first row of this hash is another pair's
            row = int(found[position]) + 1
            while row < len(self.key_hash) and self.key_hash[row] == hashes[position]:
                if self._names_at(np.array([row]), [devices[position]], [sensors[position]])[0]:
                    result[position] = row
                    break
                row += 1
        return result

    def _names_at(self, rows: np.ndarray, devices: list[str], sensors: list[str]) -> np.ndarray:
        """Per position, whether pack row ``rows[i]`` is the pair (devices[i], sensors[i])."""
        if not len(rows):
            return np.zeros(0, dtype=bool)
        taken = pa.array(rows, type=pa.int64())
        same = pc.and_(
            pc.equal(self._strings["device"].take(taken), pa.array(devices, pa.string())),
            pc.equal(self._strings["sensor"].take(taken), pa.array(sensors, pa.string())),
        )
        return same.to_numpy(zero_copy_only=False)

    def strings(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Column ``name`` (text) of many rows, as an object array."""
        taken = self._strings[name].take(pa.array(rows, type=pa.int64()))
        return taken.to_numpy(zero_copy_only=False)

    def string(self, name: str, row: int) -> str:
        return self._strings[name][row].as_py()

    def slice(self, name: str, row: int) -> np.ndarray:
        offsets, values = self.lists[name]
        return values[offsets[row] : offsets[row + 1]]

    def verified(self, row: int) -> bool:
        """Whether the row's content matches the checksum recorded when it was written."""
        return bool(self.verify(np.asarray([row]))[0])

    def verify(self, rows: np.ndarray) -> np.ndarray:
        """Per row, whether its content matches the checksum recorded when it was written
        (checked on first use, then remembered); a damaged row is refused with a warning."""
        rows = np.asarray(rows, dtype=np.int64)
        unknown = np.unique([row for row in rows.tolist() if row not in self._verified])
        if unknown.size:
            recorded = self.numbers["checksum"][unknown]
            good = content_checksums(self._columns, unknown) == recorded
            for row, ok in zip(unknown.tolist(), good.tolist(), strict=True):
                self._verified[row] = ok
                if not ok:
                    log.warning(
                        "%s: the row of Device=%r Sensor=%r is damaged (its checksum differs); "
                        "that model loads from its file instead (batchscore models pack to "
                        "rebuild)",
                        self.path,
                        self.string("device", row),
                        self.string("sensor", row),
                    )
        return np.fromiter((self._verified[row] for row in rows.tolist()), bool, len(rows))

    # --- models -----------------------------------------------------------------------------

    def model_at(self, row: int, exact: Any = None) -> FastOneClassSVM:
        """The compiled model of a (verified) row; ``exact`` returns the scikit-learn estimator
        for guard-band rows (without it, those rows raise)."""
        device, sensor = self.string("device", row), self.string("sensor", row)
        n_features = int(self.numbers["n_features"][row])
        table = None
        coefs = self.slice("table", row)
        if coefs.size:
            table = TaylorTable(
                lo=float(self.numbers["table_lo"][row]),
                width=float(self.numbers["table_width"][row]),
                coefs=coefs.reshape(-1, COEFFICIENTS).T,
            )
        return FastOneClassSVM(
            mean=self.slice("mean", row),
            scale=self.slice("scale", row),
            support_vectors=self.slice("support_vectors", row).reshape(-1, n_features),
            dual_coef=self.slice("dual_coef", row),
            rho=float(self.numbers["rho"][row]),
            gamma=float(self.numbers["gamma"][row]),
            exact=exact if exact is not None else _no_exact_model(device, sensor, self.path),
            has_scaler=bool(self._has_scaler[row].as_py()),
            table=table,
        )

    def fast_model(
        self, device: str, sensor: str, sha256: str | None = None, exact: Any = None
    ) -> FastOneClassSVM | None:
        """The pair's compiled model, or None if not packed, packed from another file
        (``sha256``) or damaged."""
        row = self.row(device, sensor)
        if row is None or (sha256 is not None and self.string("sha256", row) != sha256):
            return None
        if not self.verified(row):
            return None
        return self.model_at(row, exact)

    def load(self, store: ModelStore, device: str, sensor: str) -> LoadedModel | None:
        """A :class:`LoadedModel` whose ``pipeline`` is the packed, compiled model, or None when
        the pair is not packed or its row is damaged. The pack was built from the store's
        current manifest (checked when it was opened), so the manifest is not parsed here; the
        model file is read only if a row needs the exact estimator."""
        row = self.row(device, sensor)
        if row is None or not self.verified(row):
            return None

        def exact() -> Any:
            return store.load(device, sensor).pipeline

        return LoadedModel(
            device=device,
            sensor=sensor,
            version=self.string("version", row),
            pipeline=self.model_at(row, exact),
            features=tuple(json.loads(self.string("features", row))),
            file=self.path,
        )


def verify_pack(store: ModelStore) -> tuple[int, list[str]]:
    """(rows checked, problems) of the store's pack: built from the current manifest, every
    row's checksum, and every row naming the file the manifest names for its pair."""
    path = pack_path(store)
    if not path.is_file():
        return 0, []
    try:
        pack = PackedStore.open(path)
    except PackError as exc:
        return 0, [str(exc)]
    if pack.manifest_sha256 != manifest_sha256(store):
        return 0, [f"{path}: stale (built from another manifest): batchscore models pack"]
    rows = np.arange(len(pack))
    problems = [
        f"{path}: the row of Device={pack.string('device', row)!r} "
        f"Sensor={pack.string('sensor', row)!r} is damaged (its checksum differs)"
        for row in rows[~pack.verify(rows)]
    ]
    for row in rows:
        device, sensor = pack.string("device", int(row)), pack.string("sensor", int(row))
        try:
            named = str(store.entry(device, sensor)["sha256"])
        except ModelStoreError:
            problems.append(f"{path}: Device={device!r} Sensor={sensor!r} is not in the manifest")
            continue
        if named != pack.string("sha256", int(row)):
            problems.append(
                f"{path}: Device={device!r} Sensor={sensor!r} was packed from another file"
            )
    return len(pack), problems


def _no_exact_model(device: str, sensor: str, path: Path):
    def missing() -> Any:
        raise PackError(
            f"Device={device!r} Sensor={sensor!r}: a row needs the exact estimator but the "
            f"model was taken from {path} without its model store"
        )

    return missing


# --- the baselines a pack carries (scoring.models.baseline) ----------------------------------
def store_baselines(models: Any) -> dict[tuple[str, str], baseline.Baseline | None]:
    """Every pair's baseline in a model store folder: from its pack when the pack is current
    and has them (memory-mapped, no manifest parse), else from ``manifest.json``."""
    store = ModelStore(models)
    pack = PackedStore.for_store(store)
    if pack is not None:
        found = pack_baselines(pack)
        if found is not None:
            return found
    return {
        key: baseline.Baseline.from_dict(store.entry(*key).get(baseline.ENTRY_KEY))
        for key in store.keys()
    }


def pack_baselines(pack: PackedStore) -> dict[tuple[str, str], baseline.Baseline | None] | None:
    """The baselines of a :class:`scoring.models.pack.PackedStore`; None for a pack written
    before baselines were kept (no ``baseline`` column)."""
    table = pack._table  # noqa: SLF001 - the pack's own memory-mapped table, read here
    if baseline.PACK_COLUMN not in table.column_names:
        return None
    column = table.column(baseline.PACK_COLUMN).combine_chunks()
    offsets = column.offsets.to_numpy()
    flat = column.values.to_numpy()
    devices = table.column("device").to_pylist()
    sensors = table.column("sensor").to_pylist()
    return {
        (d, s): baseline.unpacked(flat[offsets[i] : offsets[i + 1]])
        for i, (d, s) in enumerate(zip(devices, sensors, strict=True))
    }
