"""The model store: one model file per (Device, Sensor) plus ``manifest.json``.

Layout of a store folder (later mirrored to a Blob container as is)::

    manifest.json
    <device>/<sensor>.<version>.model.json the default model (names percent-encoded, see below)
    <device>/<sensor>.<version>.skops      any other estimator

Two file formats, both loaded without executing anything from the file. The product's own
model, ``Pipeline(StandardScaler, OneClassSVM)``, is saved as its estimators' attributes in
JSON (:mod:`scoring.models.state_file`): 0.4 ms to write where skops takes 5 ms (its dump and
the audit of it), more than the fit itself. Any other estimator (a model saved through
:meth:`ModelStore.save` with other types) is saved with skops. Stores written before the JSON
format keep loading as they are.

``manifest.json``::

    {
      "format": 1,
      "written_with": {"scikit-learn": "1.9.1", "skops": "0.16.0", "numpy": "2.4.6"},
      "updated_at": "2026-01-01T00:00:00Z",
      "models": [
        {"device": "dev-001", "sensor": "temperature",
         "file": "dev-001/temperature.20260101T000000Z-3f1c2a9b0d4e.skops",
         "version": "20260101T000000Z-3f1c2a9b0d4e", "sha256": "...",
         "training_rows": 1440, "params": {"kernel": "rbf", ...},
         "features": ["Value"], "trained_at": "2026-01-01T00:00:00Z",
         "sklearn_version": "1.9.1",
         "probes": {"inputs": [[...], ...], "outputs": [...]}}
      ]
    }

Design choices:

* The version (training time + content hash) is part of the file name, so a retrain
  writes new files beside the old ones and only the manifest rename switches
  readers over. A retrain that crashes half-way leaves the old store intact;
  superseded files are deleted after the new manifest is in place.
* Every write is atomic (temporary sibling + ``os.replace``), the manifest too.
* Loading never executes code from a file: both formats rebuild only types on an
  allow-list (:data:`TRUSTED_TYPES`, plus a store's extra types for skops), and anything
  else is refused with the file and the types named. The sha256 recorded in the manifest
  is checked first.
* Upgrade safety: each model records the scikit-learn version it was saved with
  and a few probe inputs with their expected outputs. When the running version
  differs, the model is re-checked on its probes; a load error or a mismatch asks
  for a retrain instead of scoring with a silently different model.

Device and Sensor values become path segments through
:func:`scoring.data.schema.encode_partition_value` (letters, digits, ``-`` and ``_``
stay; everything else, dots and slashes included, is ``%XX``), so no name can
escape the store folder.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib
import io
import json
import logging
import os
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from scoring.data.files import atomic_path
from scoring.data.schema import encode_partition_value
from scoring.errors import UsageError
from scoring.models import state_file

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
#: a store that keeps generations has this index (:mod:`scoring.models.generations`)
GENERATIONS_INDEX = "generations.json"
MANIFEST_FORMAT = 1
MODEL_SUFFIX = ".skops"
#: the default model's file (:mod:`scoring.models.state_file`); not plain ``.json``, which the
#: store's own manifests and indexes end with
STATE_SUFFIX = ".model.json"
MODEL_SUFFIXES: tuple[str, ...] = (STATE_SUFFIX, MODEL_SUFFIX)
DEFAULT_FEATURES: tuple[str, ...] = ("Value",)

# The types this product saves: exactly those of the JSON format. skops trusts
# scikit-learn's own estimators by default today; naming ours explicitly keeps them loadable
# should that default narrow, and documents what a model file may contain. Anything else is
# refused.
TRUSTED_TYPES: tuple[str, ...] = state_file.CLASSES

# Multiples of the training standard deviation around the training mean at which
# probes are taken when the caller gives none: inside, near and beyond the boundary.
_PROBE_SPREAD = (-6.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 6.0)
_PROBE_RTOL = 1e-7
_PROBE_ATOL = 1e-9

RETRAIN_HINT = "retrain with `batchscore train`"
_REQUIRED_ENTRY_KEYS = ("device", "sensor", "file", "version", "sha256")
# Store files are meant to be shared (uploaded, baked into images, read by a
# service account): readable by all, unlike the 0600 of a fresh temporary file.
_FILE_MODE = 0o644


class ModelStoreError(UsageError):
    """A model store cannot be read or written (names the folder or file)."""


class ModelNotFoundError(ModelStoreError):
    """No model for a (Device, Sensor) pair, or its file is missing."""


class ModelLoadError(ModelStoreError):
    """A model file exists but cannot be trusted: corrupt, unsafe or incompatible."""


# scikit-learn and skops take over a second to import. A scoring worker served entirely by
# the packed store (scoring.models.pack) never needs them, so they are imported on first
# use; ``model_store.sio`` / ``.skops`` / ``.sklearn`` still resolve (module __getattr__).
_LAZY_MODULES = {"sklearn": "sklearn", "skops": "skops", "sio": "skops.io"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _sio() -> Any:
    return importlib.import_module("skops.io")


def running_sklearn_version() -> str:
    """The scikit-learn version of this process (a seam the upgrade tests fake)."""
    return importlib.import_module("sklearn").__version__


def library_versions() -> dict[str, str]:
    return {
        "scikit-learn": running_sklearn_version(),
        "skops": importlib.import_module("skops").__version__,
        "numpy": np.__version__,
    }


#: longest file or folder name a store writes (most file systems and blob paths take 255 bytes)
MAX_NAME_BYTES = 200
LONG_NAMES_FOLDER = "_long-names"


def model_relpath(device: str, sensor: str, version: str) -> str:
    """The file of one model version, relative to the store root (POSIX separators).

    ``<device>/<sensor>.<version>``, names percent-encoded; a pair whose encoded name would not
    fit a file name goes under ``_long-names/<hash of the pair>.<version>`` instead: the
    manifest maps every pair to its file, so any stored name has a model."""
    try:
        folder, name = encode_partition_value(device), encode_partition_value(sensor)
    except ValueError as exc:
        raise ModelStoreError(
            f"Device={device!r} Sensor={sensor!r}: device and sensor must be non-empty"
        ) from exc
    file_name = f"{name}.{version}{max(MODEL_SUFFIXES, key=len)}"
    if len(folder.encode()) > MAX_NAME_BYTES or len(file_name.encode()) > MAX_NAME_BYTES:
        digest = hashlib.sha256(f"{device}\0{sensor}".encode()).hexdigest()[:32]
        return f"{LONG_NAMES_FOLDER}/{digest}.{version}"
    return f"{folder}/{name}.{version}"


def _pair(device: str, sensor: str) -> str:
    return f"Device={device!r} Sensor={sensor!r}"


def _check_entry_names_its_file(
    device: str, sensor: str, entry: dict[str, Any], manifest: Path
) -> None:
    """A model file knows its pair and its version: both are in its name
    (:func:`model_relpath`). A manifest entry that points a pair at another pair's file, or
    names a version whose file is not the one it points at, is refused: scoring with it would
    put another pair's model, or a version no file holds, on every row."""
    version, relpath = str(entry["version"]), str(entry["file"])
    suffix = next((s for s in MODEL_SUFFIXES if relpath.endswith(s)), MODEL_SUFFIX)
    try:
        expected = model_relpath(device, sensor, version) + suffix
    except ModelStoreError:
        expected = None
    if relpath != expected:
        raise ModelLoadError(
            f"{_pair(device, sensor)}: {manifest} points at {relpath!r}, which is not this "
            f"pair's file of version {version!r} (expected {expected!r})"
        )


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score, with what the predictions need to carry."""

    device: str
    sensor: str
    version: str
    pipeline: Any
    features: tuple[str, ...] = DEFAULT_FEATURES
    file: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)


class ModelStore:
    """A folder of per-(Device, Sensor) models described by ``manifest.json``.

    Writing: call :meth:`save` per pair; with ``write_manifest=False`` (bulk
    training) finish with one :meth:`write_manifest`. One writer at a time.
    Reading: :meth:`keys`, :meth:`entry`, :meth:`load`. The manifest is read once
    and cached; :meth:`reload` re-reads it.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, extra_trusted_types: Iterable[str] = ()
    ) -> None:
        self.root = Path(root)
        self.trusted_types: tuple[str, ...] = TRUSTED_TYPES + tuple(extra_trusted_types)
        self._entries: dict[tuple[str, str], dict[str, Any]] | None = None
        #: the manifest lines of entries recorded with one (made by training's workers)
        self._lines: dict[tuple[str, str], str] = {}
        self._superseded: list[str] = []
        #: model files written since the last write_manifest without their own fsync
        self._not_durable = False

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    # ----------------------------------------------------------------- reading

    def _read_manifest(self, *, must_exist: bool) -> dict[tuple[str, str], dict[str, Any]]:
        path = self.manifest_path
        if not path.is_file():
            if must_exist:
                raise ModelStoreError(
                    f"{path}: no model store manifest here (train one with "
                    "`batchscore train --models DIR`)"
                )
            return {}
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelStoreError(f"{path}: unreadable manifest ({exc})") from exc
        if not isinstance(document, dict) or not isinstance(document.get("models"), list):
            raise ModelStoreError(f"{path}: not a model store manifest (no 'models' list)")
        if document.get("format") != MANIFEST_FORMAT:
            raise ModelStoreError(
                f"{path}: manifest format {document.get('format')!r} is not supported "
                f"(this code reads format {MANIFEST_FORMAT})"
            )
        entries: dict[tuple[str, str], dict[str, Any]] = {}
        for position, entry in enumerate(document["models"]):
            missing = [
                k for k in _REQUIRED_ENTRY_KEYS if not isinstance(entry, dict) or k not in entry
            ]
            if missing:
                raise ModelStoreError(
                    f"{path}: model entry #{position} lacks {', '.join(missing)} "
                    f"(required: {', '.join(_REQUIRED_ENTRY_KEYS)})"
                )
            entries[(str(entry["device"]), str(entry["sensor"]))] = entry
        return entries

    def _manifest(self, *, must_exist: bool = True) -> dict[tuple[str, str], dict[str, Any]]:
        if self._entries is None:
            entries = self._read_manifest(must_exist=must_exist)
            if not entries and not self.manifest_path.is_file():
                return entries  # nothing cached: a manifest written later is picked up
            self._entries = entries
        return self._entries

    def reload(self) -> None:
        """Forget the cached manifest (read again on next use)."""
        self._entries = None
        self._lines.clear()

    def keys(self) -> list[tuple[str, str]]:
        """The (Device, Sensor) pairs listed in the manifest, sorted."""
        return sorted(self._manifest())

    def __contains__(self, pair: object) -> bool:
        return pair in self._manifest()

    def __len__(self) -> int:
        return len(self._manifest())

    def entry(self, device: str, sensor: str) -> dict[str, Any]:
        """The manifest entry of one pair (metadata only, the file is not read)."""
        try:
            return self._manifest()[(device, sensor)]
        except KeyError:
            raise ModelNotFoundError(
                f"no model for {_pair(device, sensor)} in {self.manifest_path}"
            ) from None

    def _model_path(self, device: str, sensor: str, relpath: str) -> Path:
        path = (self.root / relpath).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ModelLoadError(
                f"{_pair(device, sensor)}: manifest file {relpath!r} points outside {self.root}"
            )
        return path

    def read_model_bytes(self, device: str, sensor: str) -> tuple[dict[str, Any], Path, bytes]:
        """The entry, path and verified bytes of one model (its file is the pair's own file of
        that version, its sha256 checked)."""
        entry = self.entry(device, sensor)
        path = self._model_path(device, sensor, entry["file"])
        _check_entry_names_its_file(device, sensor, entry, self.manifest_path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelNotFoundError(
                f"{_pair(device, sensor)}: model file {path} is listed in "
                f"{self.manifest_path} but missing"
            ) from None
        except OSError as exc:
            raise ModelLoadError(f"{_pair(device, sensor)}: cannot read {path} ({exc})") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            raise ModelLoadError(
                f"{_pair(device, sensor)}: model file {path} is corrupt or was replaced "
                f"(sha256 {digest[:12]}..., manifest says {str(entry['sha256'])[:12]}...)"
            )
        return entry, path, data

    def _deserialize(self, device: str, sensor: str, path: Path, data: bytes) -> Any:
        """Rebuild the estimator from the file's bytes (its format by its suffix)."""
        if path.name.endswith(STATE_SUFFIX):
            try:
                return state_file.loads(data)
            except state_file.StateFileError as exc:
                raise ModelLoadError(
                    f"{_pair(device, sensor)}: refused to load {path}: {exc}"
                ) from None
        return self._deserialize_skops(device, sensor, path, data)

    def _deserialize_skops(self, device: str, sensor: str, path: Path, data: bytes) -> Any:
        """Rebuild the estimator from skops bytes, refusing types off the allow-list.

        skops audits the whole object tree before constructing anything, so a refused
        file executes nothing; the list of offending types is computed only then.
        """
        sio = _sio()
        from skops.io.exceptions import UntrustedTypesFoundException

        try:
            return sio.loads(data, trusted=list(self.trusted_types))
        except UntrustedTypesFoundException:
            refused = sorted(set(sio.get_untrusted_types(data=data)) - set(self.trusted_types))
            raise ModelLoadError(
                f"{_pair(device, sensor)}: refused to load {path}: it contains untrusted "
                f"types {', '.join(refused)} (allowed beyond skops' defaults: "
                f"{', '.join(self.trusted_types)})"
            ) from None
        except (zipfile.BadZipFile, json.JSONDecodeError, KeyError) as exc:
            raise ModelLoadError(
                f"{_pair(device, sensor)}: {path} is not a readable skops file ({exc})"
            ) from exc

    def load(self, device: str, sensor: str) -> LoadedModel:
        """Load one pair's model, verified (sha256, allow-list, upgrade probes)."""
        entry, path, data = self.read_model_bytes(device, sensor)
        saved_with = str(entry.get("sklearn_version", "unknown"))
        running = running_sklearn_version()
        upgraded = saved_with != running
        upgrade_note = f"saved with scikit-learn {saved_with}, running {running}: {RETRAIN_HINT}"
        try:
            pipeline = self._deserialize(device, sensor, path, data)
        except ModelLoadError:
            raise
        except Exception as exc:
            reason = upgrade_note if upgraded else "the file does not rebuild"
            raise ModelLoadError(
                f"{_pair(device, sensor)}: cannot load {path}: {reason} ({exc})"
            ) from exc
        if upgraded:
            self._check_probes(device, sensor, path, pipeline, entry, upgrade_note)
        return LoadedModel(
            device=device,
            sensor=sensor,
            version=str(entry["version"]),
            pipeline=pipeline,
            features=tuple(entry.get("features") or DEFAULT_FEATURES),
            file=path,
            params=dict(entry.get("params") or {}),
        )

    def _check_probes(
        self,
        device: str,
        sensor: str,
        path: Path,
        pipeline: Any,
        entry: dict[str, Any],
        upgrade_note: str,
    ) -> None:
        probes = entry.get("probes") or {}
        try:
            inputs = np.asarray(probes["inputs"], dtype="float64")
            expected = np.asarray(probes["outputs"], dtype="float64")
            actual = probe_outputs(pipeline, inputs)
        except Exception as exc:
            raise ModelLoadError(
                f"{_pair(device, sensor)}: {path} cannot be re-checked ({exc}); {upgrade_note}"
            ) from exc
        if not probes_agree(actual, expected):
            raise ModelLoadError(
                f"{_pair(device, sensor)}: {path} gives different results on its probe "
                f"inputs; {upgrade_note}"
            )
        log.info("%s: probes match after the scikit-learn change (%s)", _pair(device, sensor), path)

    def verify_files(self, *, load: bool = False) -> list[str]:
        """Every problem with the model files the manifest lists: missing, unreadable, or bytes
        whose sha256 differs from the manifest's; with ``load``, also files that do not
        rebuild safely (allow-list, upgrade probes). One message per problem, naming the pair
        and the file; [] when every file is as the manifest says."""
        problems = []
        for device, sensor in self.keys():
            try:
                if load:
                    self.load(device, sensor)
                else:
                    self.read_model_bytes(device, sensor)
            except ModelStoreError as exc:
                problems.append(str(exc))
        return problems

    # ----------------------------------------------------------------- writing

    def save(
        self,
        device: str,
        sensor: str,
        pipeline: Any,
        *,
        training_rows: int,
        params: dict[str, Any],
        features: Sequence[str] = DEFAULT_FEATURES,
        probe_inputs: np.ndarray | None = None,
        write_manifest: bool = True,
    ) -> str:
        """Write one fitted model and return its new version string.

        The manifest is written too unless ``write_manifest`` is false (bulk saves
        then end with one :meth:`write_manifest`, which keeps N saves O(N)).
        """
        model = serialize_model(
            device,
            sensor,
            pipeline,
            training_rows=training_rows,
            params=params,
            features=features,
            probe_inputs=probe_inputs,
            trusted_types=self.trusted_types,
        )
        return self.write_serialized(model, write_manifest=write_manifest)

    def write_serialized(self, model: SerializedModel, *, write_manifest: bool = True) -> str:
        """Write a model :func:`serialize_model` made (here or in another process) and record
        it in the manifest (now, or with the bulk's final :meth:`write_manifest`)."""
        write_model_file(self.root, model, durable=write_manifest)
        return self.record_written(model.entry, write_manifest=write_manifest)

    def record_written(
        self, entry: dict[str, Any], *, write_manifest: bool = True, line: str | None = None
    ) -> str:
        """Record a model whose file is already written (by :func:`write_model_file`, here or
        in a training worker) in the manifest: now, or with the bulk's :meth:`write_manifest`,
        which first makes the files durable. ``line``: the entry's :func:`manifest_line`,
        made already (a training worker makes it in parallel: turning the floats of 5,000
        entries into text was 0.25 s of the parent's serial end)."""
        device, sensor, relpath = entry["device"], entry["sensor"], entry["file"]
        entries = self._manifest(must_exist=False)
        previous = entries.get((device, sensor))
        if previous is not None and previous["file"] != relpath:
            self._superseded.append(previous["file"])
        entries[(device, sensor)] = entry
        if line is None:  # a line recorded before is this pair's previous entry's
            self._lines.pop((device, sensor), None)
        else:
            self._lines[(device, sensor)] = line
        self._entries = entries
        if write_manifest:
            self.write_manifest()
        else:
            self._not_durable = True
        return str(entry["version"])

    def write_manifest(self) -> Path:
        """Write ``manifest.json`` atomically, then delete superseded model files (unless the
        store keeps generations: their files stay until the generations are pruned, see
        :mod:`scoring.models.generations`)."""
        entries = self._manifest(must_exist=False)
        if self._not_durable:  # the files the new manifest names reach the disk before it
            try:
                _flush_to_disk(self.root)
            except OSError as exc:
                raise ModelStoreError(
                    f"{self.root}: the model files could not be flushed to disk ({exc}); "
                    "the manifest was not written"
                ) from exc
            self._not_durable = False
        try:
            text = manifest_text(entries, lines=self._lines)
            _write_atomically(self.manifest_path, text.encode("utf-8"))
        except OSError as exc:
            raise ModelStoreError(
                f"{self.manifest_path}: cannot write the manifest ({exc})"
            ) from exc
        self._entries = entries
        self._lines.clear()
        if (self.root / GENERATIONS_INDEX).exists():
            self._superseded.clear()  # an older generation may still name them
        live = {entry["file"] for entry in entries.values()}
        for relpath in self._superseded:
            if relpath not in live:
                (self.root / relpath).unlink(missing_ok=True)
        self._superseded.clear()
        return self.manifest_path


def manifest_line(entry: Mapping[str, Any]) -> str:
    """A model's line of a manifest: its entry as one line of JSON."""
    return json.dumps(dict(entry))


def manifest_text(
    entries: Mapping[tuple[str, str], Mapping[str, Any]],
    *,
    lines: Mapping[tuple[str, str], str] | None = None,
    **header: Any,
) -> str:
    """The text of a ``manifest.json`` listing ``entries``; ``header`` adds keys beside
    ``format``, ``written_with`` and ``updated_at`` (readers ignore keys they do not know).
    ``lines``: entries' :func:`manifest_line` made already, by pair."""
    head = {
        "format": MANIFEST_FORMAT,
        "written_with": library_versions(),
        "updated_at": _iso(_utc_now()),
        **header,
    }
    # One model per line: readable, line-diffable, and compact for many models.
    made = lines or {}
    body = ",\n".join(
        "  " + (made.get(key) or manifest_line(entries[key])) for key in sorted(entries)
    )
    return json.dumps(head, indent=1)[:-2] + ',\n "models": [\n' + body + "\n ]\n}\n"


def probes_agree(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Whether a model's answers on its probe inputs are the recorded ones (same shape, close,
    and the same side of the boundary): the one rule for upgrades and for promotion."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    same = actual.shape == expected.shape and np.allclose(
        actual, expected, rtol=_PROBE_RTOL, atol=_PROBE_ATOL
    )
    return bool(same and np.array_equal(actual > 0, expected > 0))


@dataclass(frozen=True)
class SerializedModel:
    """A fitted model ready to be written: its skops bytes and its manifest entry."""

    data: bytes
    entry: dict[str, Any]


def serialize_model(
    device: str,
    sensor: str,
    pipeline: Any,
    *,
    training_rows: int,
    params: dict[str, Any],
    features: Sequence[str] = DEFAULT_FEATURES,
    probe_inputs: np.ndarray | None = None,
    trusted_types: Sequence[str] = TRUSTED_TYPES,
    answers: Any = None,
) -> SerializedModel:
    """A fitted model as file bytes (the JSON state format when the model is made of its
    types, else skops) and its manifest entry (version, sha256, probes, ...), refused if it
    could not be loaded back safely. Pure: training runs it in its worker processes, so the
    one writer (:meth:`ModelStore.write_serialized`) only writes files. ``answers``: what
    answers the probes instead of ``pipeline`` (training passes the pipeline's libsvm call
    without scikit-learn's checks, :class:`scoring.models.direct_fit.Answers`: the same values
    in a fraction of the time)."""
    try:
        data, suffix = state_file.dumps(pipeline), STATE_SUFFIX
    except state_file.StateFileError:
        data, suffix = _skops_bytes(device, sensor, pipeline, trusted_types), MODEL_SUFFIX
    digest = hashlib.sha256(data).hexdigest()
    trained_at = _utc_now()
    version = f"{trained_at:%Y%m%dT%H%M%SZ}-{digest[:12]}"
    inputs = (
        default_probe_inputs(pipeline, len(features))
        if probe_inputs is None
        else np.asarray(probe_inputs, dtype="float64")
    )
    entry = {
        "device": device,
        "sensor": sensor,
        "file": model_relpath(device, sensor, version) + suffix,
        "version": version,
        "sha256": digest,
        "training_rows": int(training_rows),
        "params": dict(params),
        "features": list(features),
        "trained_at": _iso(trained_at),
        "sklearn_version": running_sklearn_version(),
        "probes": {
            "inputs": inputs.tolist(),
            "outputs": probe_outputs(pipeline if answers is None else answers, inputs).tolist(),
        },
    }
    return SerializedModel(data, entry)


def _skops_bytes(device: str, sensor: str, pipeline: Any, trusted_types: Sequence[str]) -> bytes:
    sio = _sio()
    buffer = io.BytesIO()
    sio.dump(pipeline, buffer, compression=zipfile.ZIP_DEFLATED)  # ~5x smaller, same speed
    data = buffer.getvalue()
    refused = sorted(set(sio.get_untrusted_types(data=data)) - set(trusted_types))
    if refused:
        raise ModelStoreError(
            f"{_pair(device, sensor)}: will not save a model that could not be loaded "
            f"safely: untrusted types {', '.join(refused)}"
        )
    return data


def write_model_file(
    root: Path, model: SerializedModel, *, durable: bool, folders: set[Path] | None = None
) -> Path:
    """Write one model's file into the store at ``root`` (its manifest is not touched:
    :meth:`ModelStore.record_written`). Not ``durable``: a bulk defers durability to its one
    :meth:`ModelStore.write_manifest` (an fsync per file cost 3 to 8 ms here, more than
    fitting the model). ``folders``: those already made, to skip making them again."""
    entry = model.entry
    target = root / entry["file"]
    try:
        if folders is None or target.parent not in folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            if folders is not None:
                folders.add(target.parent)
        durable = durable or not _CAN_FLUSH_ALL
        if not _write_new(target, model.data, durable=durable):
            _write_atomically(target, model.data, durable=durable, make_parent=False)
    except OSError as exc:
        raise ModelStoreError(
            f"{_pair(entry['device'], entry['sensor'])}: cannot write {target} ({exc})"
        ) from exc
    return target


def _write_new(path: Path, data: bytes, *, durable: bool) -> bool:
    """Write ``data`` as the new file ``path``, in place; False (nothing written) if a file of
    that name exists.

    A model file's name is new (its version is the time and its content's hash) and no reader
    opens a model file before the manifest names it, which it does only once every file of
    the bulk is on disk (:meth:`ModelStore.write_manifest`). So a new name needs no temporary
    file and rename to keep readers from a part: 17 us a file instead of 125 us (2 KB files,
    measured), a tenth of what a model cost to train. A file a crash left half written is
    named by no manifest, as a temporary file would have been. An existing name (the same
    model trained again within the second) may be open in a reader: it is replaced
    atomically (:func:`_write_atomically`)."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, _FILE_MODE)
    except FileExistsError:
        return False
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view) :]
        if _CAN_FCHMOD:  # as every store file: not narrowed by the umask
            os.fchmod(handle, _FILE_MODE)
        if durable:
            os.fsync(handle)
    except BaseException:
        os.close(handle)
        path.unlink(missing_ok=True)
        raise
    os.close(handle)
    if not _CAN_FCHMOD:
        os.chmod(path, _FILE_MODE)
    return True


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_CAN_FCHMOD = hasattr(os, "fchmod")


def _write_atomically(
    path: Path, data: bytes, *, durable: bool = True, make_parent: bool = True
) -> None:
    """Readers see the old file or the whole new one, never a part (temp + rename).
    ``durable``: on disk before this returns (fsync); otherwise the caller flushes later
    (:func:`_flush_to_disk`), before anything durable points to the file."""
    with atomic_path(path, make_parent=make_parent) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)


def _flush_to_disk(root: Path) -> None:
    """Everything written so far in the store at ``root`` reaches the disk: one flush for a
    whole bulk of model files, so a crash can lose the new files but never leave a manifest
    naming a file not on disk.

    Linux's ``syncfs(2)`` flushes the store's own file system ("like sync(), but synchronizes
    just the file system containing the file referred to by the open file descriptor fd", and
    since Linux 5.8 it reports writeback errors: man 2 syncfs); ``os.sync`` waits for every file
    system's dirty data, whoever wrote it (once 0.77 s of a training run here, after another
    program had written a disk). Python 3.11 has no ``os.syncfs``: libc's, through ctypes;
    where it is missing, ``os.sync``."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        if _CAN_FLUSH_ALL:
            os.sync()
        return
    handle = os.open(root, os.O_RDONLY)
    try:
        if syncfs(handle) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs: {os.strerror(error)}")
    finally:
        os.close(handle)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, or None where there is none (not Linux, or an old libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
    return function


#: where the system cannot flush everything at once (no ``os.sync``), every file is fsynced
_CAN_FLUSH_ALL = hasattr(os, "sync")


def default_probe_inputs(pipeline: Any, n_features: int) -> np.ndarray:
    """Probe rows around the training data: from the first step's mean/scale if known."""
    first = pipeline.steps[0][1] if hasattr(pipeline, "steps") else pipeline
    mean = getattr(first, "mean_", None)
    scale = getattr(first, "scale_", None)
    if mean is None or scale is None:
        mean, scale = np.zeros(n_features), np.ones(n_features)
    spread = np.asarray(_PROBE_SPREAD)[:, None]
    return np.asarray(mean, dtype="float64")[None, :] + spread * np.asarray(scale)[None, :]


def probe_outputs(pipeline: Any, inputs: np.ndarray) -> np.ndarray:
    """What a model answers on probe inputs: decision values, else predictions."""
    if hasattr(pipeline, "decision_function"):
        return np.asarray(pipeline.decision_function(inputs), dtype="float64").ravel()
    return np.asarray(pipeline.predict(inputs), dtype="float64").ravel()
