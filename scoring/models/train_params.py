"""The hyperparameters of training and their defaults (why these: the docstring of
:mod:`scoring.models.training`).

Apart from the training itself so that what only describes it, such as ``batchscore train
--help``, does not import scikit-learn and SciPy: 1.5 to 2 s of start-up for a help text.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scoring.data.schema import VALUE

# The model inputs, in order. One place, so the feature set can grow (e.g. MinValue).
FEATURES: tuple[str, ...] = (VALUE,)

DEFAULT_KERNEL = "rbf"
DEFAULT_GAMMA: str | float = 0.1
DEFAULT_NU = 0.02
DEFAULT_MIN_ROWS = 10
DEFAULT_OUTLIER_MADS = 3.0
DEFAULT_RANGE_TOLERANCE = 0.3
KERNELS = ("rbf", "linear", "poly", "sigmoid")


@dataclass(frozen=True)
class TrainParams:
    """OneClassSVM hyperparameters (recorded per model in the manifest)."""

    kernel: str = DEFAULT_KERNEL
    gamma: str | float = DEFAULT_GAMMA
    nu: float = DEFAULT_NU
    #: leave training rows beyond this many robust deviations out of the fit (None: keep all)
    outlier_mads: float | None = DEFAULT_OUTLIER_MADS
    #: calibrate the threshold to the training range widened by this share (None: the fit's)
    range_tolerance: float | None = DEFAULT_RANGE_TOLERANCE

    @classmethod
    def reference(cls, kernel: str, gamma: str | float, nu: float) -> TrainParams:
        """Exactly scikit-learn's ``OneClassSVM`` on every row: no trimming, no calibration."""
        return cls(kernel=kernel, gamma=gamma, nu=nu, outlier_mads=None, range_tolerance=None)

    def recorded(self) -> dict[str, object]:
        """What the manifest records (the options that are off are left out)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def validate(self) -> TrainParams:
        """Return self, or raise ``ValueError`` naming the flag of the bad value."""
        if self.kernel not in KERNELS:
            raise ValueError(f"--kernel {self.kernel!r}: use one of {', '.join(KERNELS)}")
        if not 0.0 < self.nu <= 1.0:
            raise ValueError(f"--nu {self.nu}: must be in (0, 1]")
        if isinstance(self.gamma, str):
            if self.gamma not in ("scale", "auto"):
                raise ValueError(f"--gamma {self.gamma!r}: use scale, auto or a positive number")
        elif not (math.isfinite(self.gamma) and self.gamma > 0):
            raise ValueError(f"--gamma {self.gamma}: must be a positive number")
        if self.outlier_mads is not None and not (
            math.isfinite(self.outlier_mads) and self.outlier_mads > 0
        ):
            raise ValueError(f"--outlier-mads {self.outlier_mads}: must be a positive number")
        if self.range_tolerance is not None and not (
            math.isfinite(self.range_tolerance) and self.range_tolerance >= 0
        ):
            raise ValueError(
                f"--range-tolerance {self.range_tolerance}: must be a number of at least 0"
            )
        return self
