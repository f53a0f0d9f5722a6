"""The default model's file: its estimators' attributes as JSON, rebuilt without running code.

A model the product trains is ``Pipeline(StandardScaler(), OneClassSVM())``: a few dozen
numbers. skops saves any estimator safely, and at a price that dwarfs such a model: 3.6 ms to
write it (a generic object-tree schema, zipped) and 1.6 ms more to audit it on save, against
0.3 ms to fit it. This format holds exactly what scikit-learn's own ``__getstate__`` gives for
the three types of the default model and nothing else::

    {"format": "batchscore.estimator-state/1",
     "model": {"estimator": {"class": "sklearn.pipeline.Pipeline",
                             "state": {"steps": [{"tuple": ["scale", {"estimator": ...}]}, ...],
                                       "memory": null, ...}}}}

Values are JSON's own (null, booleans, numbers, strings, lists) or one of three tags:
``{"tuple": [...]}``, ``{"ndarray": {"dtype", "shape", "data"}}`` (the array's bytes, little
endian, base64: exact) with the dtype one of :data:`DTYPES`, and ``{"estimator": {"class",
"state"}}``. Python floats are written as JSON numbers, which round-trip exactly (the
shortest ``repr``); numpy scalars as 0-d arrays.

What makes it safe to load: the text is parsed as JSON, nothing else; an estimator's class
is looked up by name in :data:`CLASSES` (nothing named by the file is imported, anything else
is refused with its name), made with ``__new__`` and given its attributes by its own
``__setstate__``, as pickle and skops do, so no constructor or method of the file's choosing
runs; attribute names must be plain names (no ``__dunder__``). The store checks the file's
sha256 against the manifest before it gets here, and re-checks a model on its probes when
scikit-learn's version changed (:mod:`scoring.models.store`). Any other estimator is saved
with skops.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

FORMAT = "batchscore.estimator-state/1"

#: the classes a state file may name, by the name scikit-learn's types report
CLASSES: tuple[str, ...] = (
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.OneClassSVM",
)
#: the array types a state file may hold (little-endian float64, int32, int64; bool)
DTYPES: tuple[str, ...] = ("<f8", "<i4", "<i8", "|b1")


class StateFileError(ValueError):
    """A state file that cannot be rebuilt safely (names what and where)."""


def class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def can_save(estimator: Any) -> bool:
    """Whether ``estimator`` is made only of :data:`CLASSES` and values this format holds."""
    try:
        _encode_estimator(estimator)
    except StateFileError:
        return False
    return True


def dumps(estimator: Any) -> bytes:
    """The state file of a fitted estimator; :class:`StateFileError` if it is not made only
    of :data:`CLASSES`, plain values and arrays of :data:`DTYPES`."""
    document = {"format": FORMAT, "model": _encode_estimator(estimator)}
    # No check for cycles: the document is a tree just built from fresh dicts and lists.
    return _ENCODER.encode(document).encode("utf-8")


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=True, check_circular=False)


def loads(data: bytes) -> Any:
    """The estimator a state file describes; :class:`StateFileError` naming what is refused."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateFileError(f"not a state file: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise StateFileError(f"format {found!r}, expected {FORMAT!r}")
    return _decode_estimator(document.get("model"), "model")


# ------------------------------------------------------------------------------ writing


def _encode_estimator(estimator: Any) -> dict[str, Any]:
    name = class_name(estimator)
    if name not in CLASSES:
        raise StateFileError(f"type {name} is not one this format holds ({', '.join(CLASSES)})")
    state = estimator.__getstate__()
    return {"estimator": {"class": name, "state": {key: _encode(state[key]) for key in state}}}


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        return _encode_array(value)
    if kind is tuple:
        return {"tuple": [_encode(item) for item in value]}
    if kind is list:
        return [_encode(item) for item in value]
    if class_name(value) in CLASSES:
        return _encode_estimator(value)
    raise StateFileError(f"value of type {class_name(value)} is not one this format holds")


#: values JSON holds as they are (exact types: a numpy scalar or a str subclass is not one)
_PLAIN = frozenset((type(None), bool, int, float, str))


def _encode_array(value: np.ndarray | np.generic) -> dict[str, Any]:
    # A model is a few dozen small arrays: this runs for each of them in every model trained,
    # so it asks numpy for no more than the bytes (``tobytes`` gives them in C order whatever
    # the array's layout).
    array = np.asarray(value)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype.str not in DTYPES:
        raise StateFileError(f"array of dtype {array.dtype} is not one this format holds")
    if dtype != array.dtype:
        array = array.astype(dtype)
    spec: dict[str, Any] = {
        "dtype": dtype.str,
        "shape": list(array.shape),
        "data": binascii.b2a_base64(array.tobytes(), newline=False).decode("ascii"),
    }
    if isinstance(value, np.generic):
        spec["scalar"] = True
    return {"ndarray": spec}


# ------------------------------------------------------------------------------ reading


def _classes() -> dict[str, type]:
    # Imported here, and only these: the file's text never names a module to import.
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    found = {
        f"{cls.__module__}.{cls.__qualname__}": cls
        for cls in (Pipeline, StandardScaler, OneClassSVM)
    }
    return {name: found[name] for name in CLASSES}


def _decode_estimator(node: Any, where: str) -> Any:
    if not isinstance(node, Mapping) or set(node) != {"estimator"}:
        raise StateFileError(f"{where}: expected an estimator")
    body = node["estimator"]
    if not isinstance(body, Mapping) or set(body) != {"class", "state"}:
        raise StateFileError(f"{where}: an estimator has a class and a state")
    name, state = body["class"], body["state"]
    if name not in CLASSES:
        raise StateFileError(
            f"{where}: refused type {name!r} (allowed: {', '.join(CLASSES)}); nothing was built"
        )
    if not isinstance(state, Mapping):
        raise StateFileError(f"{where}: the state of {name} is not an object")
    attributes = {}
    for key, value in state.items():
        if not key.isidentifier() or key.startswith("__"):
            raise StateFileError(f"{where}: refused attribute name {key!r} of {name}")
        attributes[key] = _decode(value, f"{where}.{key}")
    cls = _classes()[name]
    estimator = cls.__new__(cls)
    with warnings.catch_warnings():
        # scikit-learn warns when a state comes from another of its versions; the store
        # re-checks such a model on its probes instead (and says so once, not per model).
        warnings.simplefilter("ignore")
        estimator.__setstate__(attributes)
    return estimator


def _decode(value: Any, where: str) -> Any:
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is list:
        return [_decode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, Mapping) or len(value) != 1:
        raise StateFileError(f"{where}: unexpected value {type(value).__name__}")
    (tag,) = value
    if tag == "tuple" and type(value[tag]) is list:
        return tuple(_decode(item, f"{where}[{i}]") for i, item in enumerate(value[tag]))
    if tag == "ndarray":
        return _decode_array(value[tag], where)
    if tag == "estimator":
        return _decode_estimator(value, where)
    raise StateFileError(f"{where}: unknown tag {tag!r}")


def _decode_array(spec: Any, where: str) -> np.ndarray | np.generic:
    if not isinstance(spec, Mapping) or not {"dtype", "shape", "data"} <= set(spec):
        raise StateFileError(f"{where}: an array has a dtype, a shape and data")
    if spec["dtype"] not in DTYPES:
        raise StateFileError(f"{where}: refused array dtype {spec['dtype']!r}")
    shape = spec["shape"]
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
        raise StateFileError(f"{where}: bad array shape {shape!r}")
    try:
        raw = base64.b64decode(spec["data"], validate=True)
    except (TypeError, ValueError) as exc:
        raise StateFileError(f"{where}: array data is not base64 ({exc})") from None
    dtype = np.dtype(spec["dtype"])
    if len(raw) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise StateFileError(f"{where}: {len(raw)} bytes do not make an array of shape {shape}")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return array[()] if spec.get("scalar") is True and array.ndim == 0 else array
