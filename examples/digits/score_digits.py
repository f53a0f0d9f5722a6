"""Azure ML parallel entry script for the digits example (file input).

``run(mini_batch)`` receives a list of PNG file paths and returns one row per
image it could read: ``file`` (the file name) and ``digit`` (the prediction).
An unreadable image is left out and logged, so the runner counts it as a
failed item (inputs minus returned rows) without losing the others.

Arguments (parsed with ``parse_known_args``, as Azure ML passes its own too):
``--model PATH`` the skops file written by ``prepare.py``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from PIL import Image

LOG = logging.getLogger("digits")
MAX_DIGIT_INTENSITY = 16

# The only types the example's model is made of; anything else in the file is refused
# rather than loaded, so a tampered model cannot run code on the scoring node.
TRUSTED_TYPES = {
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.SVC",
    "numpy.dtype",
    "numpy.ndarray",
}

_model = None


def _load_model(path: str):
    untrusted = sio.get_untrusted_types(file=path)
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise RuntimeError(f"model {path} contains types this script does not trust: {refused}")
    return sio.load(path, trusted=untrusted)


def _read_digit(path: str) -> np.ndarray:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    if pixels.shape != (8, 8):
        raise ValueError(f"expected an 8x8 image, got {pixels.shape[1]}x{pixels.shape[0]}")
    return from_png_pixels(pixels).reshape(-1)


def from_png_pixels(pixels: np.ndarray) -> np.ndarray:
    """PNG gray levels 0..255 back to the digits' 0..16 (the inverse of prepare's encoding)."""
    return np.rint(pixels.astype(np.float64) * MAX_DIGIT_INTENSITY / 255.0)


def init() -> None:
    global _model
    parser = argparse.ArgumentParser(description="digits entry script")
    parser.add_argument("--model", required=True, help="the skops model file")
    args, _unknown = parser.parse_known_args()
    _model = _load_model(args.model)
    LOG.info("loaded digits model from %s", args.model)


def run(mini_batch: list[str]) -> pd.DataFrame:
    names: list[str] = []
    features: list[np.ndarray] = []
    for path in mini_batch:
        try:
            features.append(_read_digit(path))
        except (OSError, ValueError) as exc:
            LOG.warning("skipped %s: %s", Path(path).name, exc)
            continue
        names.append(Path(path).name)
    if not names:
        return pd.DataFrame({"file": pd.Series(dtype=str), "digit": pd.Series(dtype=int)})
    predictions = _model.predict(np.vstack(features))
    return pd.DataFrame({"file": names, "digit": predictions.astype(int)})


def shutdown() -> None:
    LOG.info("digits entry script done")
