"""Build the digits example: a small image classifier and a folder of PNG files to score.

Everything comes from scikit-learn's bundled ``load_digits`` data (no download):
the model is trained on one part, and the held-out part is written as 8x8
grayscale PNG files whose true labels are kept in ``labels.csv`` beside them,
so a batch-inference run can be checked for accuracy.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skops.io as sio
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

# load_digits pixels are integers 0..16; PNG stores 0..255. 255 / 16 is not an
# integer, so the mapping must round-trip exactly: pixel = round(v * 255 / 16) here,
# and score_digits.from_png_pixels (v = round(pixel * 16 / 255)) recovers every value.
MAX_DIGIT_INTENSITY = 16


@dataclass(frozen=True)
class DigitsExample:
    images: Path
    model: Path
    labels: Path


def to_png_pixels(values: np.ndarray) -> np.ndarray:
    return np.rint(values * 255.0 / MAX_DIGIT_INTENSITY).astype(np.uint8)


def prepare(workdir: Path, *, test_size: float = 0.3, seed: int = 0) -> DigitsExample:
    """Train the classifier, write the held-out images as PNG and their labels."""
    workdir = Path(workdir)
    images_dir = workdir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=test_size, random_state=seed, stratify=digits.target
    )
    model = make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale"))
    model.fit(x_train, y_train)
    model_path = workdir / "digits-model.skops"
    sio.dump(model, model_path)

    labels_path = workdir / "labels.csv"
    with labels_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "digit"])
        for index, (values, label) in enumerate(zip(x_test, y_test, strict=True)):
            name = f"digit-{index:04d}.png"
            Image.fromarray(to_png_pixels(values.reshape(8, 8)), mode="L").save(images_dir / name)
            writer.writerow([name, int(label)])
    return DigitsExample(images=images_dir, model=model_path, labels=labels_path)
