"""A fast scoring kernel for the product's default anomaly model, with scikit-learn's labels.

The default model is ``Pipeline(StandardScaler(), OneClassSVM(kernel="rbf"))``. scikit-learn
scores it through libsvm one row and one support vector at a time (about 0.3 million rows
per second); here the same decision function is computed vectorised with NumPy:

* one feature (the product's case): a table of Taylor expansions of the kernel sum, one per
  narrow cell of the (scaled) input axis, built once per model. A row then costs one ``exp``
  and a degree-12 polynomial instead of one ``exp`` per support vector. The truncation error
  has a closed-form bound (``_taylor_error_factor``) far below floating-point rounding.
* several features, or a model whose table would be too large: the kernel sum itself,
  in blocks of rows so the intermediate matrix stays small.

Labels stay exactly scikit-learn's: libsvm adds its terms in its own order, so a decision
value can differ from ours in the last bits. Rows whose value lies within a guard band
around 0 are re-scored by the scikit-learn estimator itself; every other row's sign is
certain. The band (:attr:`FastOneClassSVM.guard`) is a bound on both computations' rounding
(a few ulps per term summed, libsvm's and ours) times a safety factor, plus the table's
truncation bound: about 1e-11 for the default model. Points bisected onto the boundary
always get the estimator; real rows rarely do (about one in a few million in the benchmark,
which scores the training data itself), and the first such row in a process pays the import
of scikit-learn and the read of that model's file (about 1.5 s, once).

Anything that is not exactly that model (another estimator, another kernel, a pipeline
with other steps, sparse support vectors) is not compiled: :func:`compile_model` returns
``None`` and :func:`decide` falls back to the estimator's own methods.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

# Degree of the per-cell Taylor polynomial and half the cell width in units of 1/sqrt(gamma).
# With these, the truncation error is below 1e-16 times the sum of the dual coefficients.
TAYLOR_DEGREE = 12
HALF_CELL = 0.1
# Beyond REACH / sqrt(gamma) from every support vector a kernel term is below exp(-49).
REACH = 7.0
# A table larger than this (cells) is not worth building: the direct kernel is used.
MAX_TABLE_CELLS = 16_384
# Safety factor on the rounding bound that sets the guard band (see FastOneClassSVM.guard).
ROUNDING_SAFETY = 8.0
# Upper bound on the elements of one intermediate (rows x support vectors) block.
BLOCK_ELEMENTS = 1 << 18
# Rows per block of the table path (keeps its temporaries in cache).
TABLE_BLOCK_ROWS = 1 << 14

ExactModel = Callable[[], Any]


def _taylor_error_factor(degree: int, half_cell: float) -> float:
    """Bound on |truncation error| / sum(dual coefficients) of the per-cell expansion.

    With a = sqrt(gamma) * (row - cell centre) and b = sqrt(gamma) * (support vector -
    cell centre), one kernel term is exp(-a^2) exp(-b^2) exp(2ab). Lagrange's remainder of
    exp(2ab) after degree p gives |error| <= (2|a|)^(p+1) / (p+1)! * |b|^(p+1) e^-(|b|-|a|)^2,
    whose maximum over b is at |b| = (|a| + sqrt(a^2 + 2(p+1))) / 2, and which grows with |a|.
    """
    a = half_cell * (1 + 1e-6)  # rows may sit a rounding error outside their cell
    n = degree + 1
    b = (a + math.sqrt(a * a + 2 * n)) / 2
    return (2 * a) ** n / math.factorial(n) * b**n * math.exp(-((b - a) ** 2))


TAYLOR_ERROR_FACTOR = _taylor_error_factor(TAYLOR_DEGREE, HALF_CELL)


@dataclass(frozen=True, eq=False)
class TaylorTable:
    """Per-cell Taylor coefficients of sum_i c_i exp(-gamma (z - s_i)^2) for one feature.

    Cell j covers [lo + j*width, lo + (j+1)*width); ``coefs[k, j]`` is the coefficient of
    (z - centre_j)^k of the sum divided by exp(-gamma (z - centre_j)^2). Outside the table
    every support vector is at least REACH / sqrt(gamma) away, so the sum is negligible.
    """

    lo: float
    width: float
    coefs: np.ndarray  # (TAYLOR_DEGREE + 1, n_cells), float64, C order

    @property
    def n_cells(self) -> int:
        return int(self.coefs.shape[1])

    @classmethod
    def build(cls, support: np.ndarray, coef: np.ndarray, gamma: float) -> TaylorTable | None:
        """The table for 1-feature support vectors ``support`` (n,), or None if too large."""
        if support.size == 0 or not gamma > 0:
            return None
        root = math.sqrt(gamma)
        width = 2 * HALF_CELL / root
        lo = float(support.min()) - REACH / root
        hi = float(support.max()) + REACH / root
        n_cells = math.ceil((hi - lo) / width)
        if not 0 < n_cells <= MAX_TABLE_CELLS:
            return None
        centres = lo + (np.arange(n_cells) + 0.5) * width
        offsets = support[None, :] - centres[:, None]  # t = s_i - centre_j
        step = 2 * gamma * offsets
        # terms[k, j, i]: support vector i's part of cell j's coefficient k, each degree's from
        # the one before (times the step, over k); then one sum over the support vectors for
        # every cell and degree (a sum per degree cost as much as the rest of the build).
        terms = np.empty((TAYLOR_DEGREE + 1, n_cells, support.size))
        np.multiply(coef[None, :], np.exp(-gamma * offsets * offsets), out=terms[0])
        for k in range(1, TAYLOR_DEGREE + 1):
            np.multiply(terms[k - 1], step, out=terms[k])
            terms[k] /= k
        return cls(lo=lo, width=width, coefs=terms.sum(axis=2))

    def kernel_sum(self, z: np.ndarray, gamma: float) -> np.ndarray:
        """sum_i c_i exp(-gamma (z - s_i)^2) for a 1-D float64 array of scaled values."""
        position = (z - self.lo) * (1.0 / self.width)
        inside = (position >= 0) & (position < self.n_cells)
        cell = np.where(inside, position, 0).astype(np.intp)
        delta = z - (self.lo + (cell + 0.5) * self.width)
        return taylor_sum(lambda k: self.coefs[k].take(cell), delta, gamma, inside)


def taylor_sum(
    coefficient: Callable[[int], np.ndarray],
    delta: np.ndarray,
    gamma: float | np.ndarray,
    inside: np.ndarray,
) -> np.ndarray:
    """Each row's Taylor polynomial in ``delta`` (its distance from its cell's centre; the
    coefficients of degree k are ``coefficient(k)``, one per row) times exp(-gamma delta^2),
    and 0 outside the table: the one evaluation the per-pair and the fleet kernels share.
    ``delta`` is overwritten."""
    acc = np.array(coefficient(TAYLOR_DEGREE), dtype=np.float64, copy=True)
    for k in range(TAYLOR_DEGREE - 1, -1, -1):
        acc *= delta
        acc += coefficient(k)
    delta *= delta
    delta *= -gamma
    np.exp(delta, out=delta)
    acc *= delta
    acc[~inside] = 0.0
    return acc


@dataclass(frozen=True, eq=False)
class FastOneClassSVM:
    """A compiled ``[StandardScaler ->] OneClassSVM(kernel="rbf")``: arrays only.

    ``exact`` returns the scikit-learn estimator the arrays came from; it is called only when
    some row's decision value falls in the guard band (rarely), so a packed store can pass a
    loader that reads the model file on demand.
    """

    mean: np.ndarray  # (n_features,) scaler mean (zeros without a scaler)
    scale: np.ndarray  # (n_features,) scaler scale (ones without a scaler)
    support_vectors: np.ndarray  # (n_sv, n_features), in scaled space
    dual_coef: np.ndarray  # (n_sv,)
    rho: float  # decision = sum_i c_i K(x, s_i) - rho
    gamma: float
    exact: ExactModel
    has_scaler: bool = True
    table: TaylorTable | None = None
    _exact_cache: list[Any] = field(default_factory=list, repr=False)
    _exact_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Between processes a compiled model travels as its arrays: the lock and the cache stay
        # behind, and so does the way to the exact estimator (a closure over the process's own
        # objects); the receiver builds the pack from the arrays, or loads the file it needs.
        return (
            _from_arrays,
            (self.mean, self.scale, self.support_vectors, self.dual_coef, self.rho, self.gamma,
             self.has_scaler, self.table),
        )  # fmt: skip

    @property
    def n_features(self) -> int:
        return int(self.support_vectors.shape[1])

    @cached_property
    def guard(self) -> float:
        """Half-width of the band around 0 whose rows are re-scored by scikit-learn.

        Both libsvm and this kernel sum n_sv terms of magnitude at most |c_i|, each with a
        few ulps of error (distance, exp, product, running sum), then subtract rho; the
        table adds its degree's Horner steps and its truncation bound. Outside the band the
        two decision values cannot have different signs.
        """
        weight = float(np.abs(self.dual_coef).sum())
        steps = self.support_vectors.shape[0] + self.n_features + 2 * TAYLOR_DEGREE + 16
        rounding = ROUNDING_SAFETY * steps * np.finfo(np.float64).eps * (weight + abs(self.rho))
        return rounding + (TAYLOR_ERROR_FACTOR * weight if self.table is not None else 0.0)

    def with_table(self) -> FastOneClassSVM:
        """This model with its 1-feature Taylor table built (unchanged if not applicable)."""
        if self.table is not None or self.n_features != 1:
            return self
        table = TaylorTable.build(self.support_vectors[:, 0], self.dual_coef, self.gamma)
        if table is None:
            return self
        return FastOneClassSVM(
            mean=self.mean,
            scale=self.scale,
            support_vectors=self.support_vectors,
            dual_coef=self.dual_coef,
            rho=self.rho,
            gamma=self.gamma,
            exact=self.exact,
            has_scaler=self.has_scaler,
            table=table,
        )

    def decision_values(self, X: np.ndarray) -> np.ndarray:
        """Decision values of float64 rows (n, n_features), before any exact re-scoring."""
        z = X - self.mean
        z /= self.scale
        n = z.shape[0]
        out = np.empty(n)
        if self.table is not None:
            values = z[:, 0]
            for start in range(0, n, TABLE_BLOCK_ROWS):
                block = values[start : start + TABLE_BLOCK_ROWS]
                out[start : start + block.size] = self.table.kernel_sum(block, self.gamma)
        else:
            rows = max(1, BLOCK_ELEMENTS // max(1, self.support_vectors.shape[0]))
            for start in range(0, n, rows):
                out[start : start + rows] = self._direct_kernel_sum(z[start : start + rows])
        out -= self.rho
        return out

    def _direct_kernel_sum(self, z: np.ndarray) -> np.ndarray:
        # Squared distances as libsvm forms them: (x - s) per feature, then summed.
        sv = self.support_vectors
        dist = np.subtract(z[:, 0, None], sv[None, :, 0])
        dist *= dist
        for f in range(1, sv.shape[1]):
            d = np.subtract(z[:, f, None], sv[None, :, f])
            d *= d
            dist += d
        dist *= -self.gamma
        np.exp(dist, out=dist)
        return dist @ self.dual_coef

    def decide(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """(decision values, labels +1 inlier / -1 outlier), as scikit-learn would give them."""
        rows = _as_rows(X, self.n_features)
        if rows.dtype != np.float64 and self.has_scaler:
            # StandardScaler keeps float32 input in float32: only the estimator itself matches.
            return fallback_decide(self._exact_model(), rows)
        rows = rows.astype(np.float64, copy=False)
        if not np.isfinite(rows).all():
            raise ValueError("input contains NaN or infinity; the model cannot score it")
        scores = self.decision_values(rows)
        labels = np.where(scores > 0, 1, -1)
        ambiguous = np.flatnonzero(np.abs(scores) <= self.guard)
        if ambiguous.size:
            exact_scores, exact_labels = fallback_decide(self._exact_model(), rows[ambiguous])
            scores[ambiguous] = exact_scores
            labels[ambiguous] = exact_labels
        return scores, labels

    def decision_function(self, X: Any) -> np.ndarray:
        """scikit-learn's ``decision_function``, so a compiled model reads like an estimator."""
        return self.decide(X)[0]

    def predict(self, X: Any) -> np.ndarray:
        """scikit-learn's ``predict``: +1 inlier, -1 outlier."""
        return self.decide(X)[1]

    def _exact_model(self) -> Any:
        """The scikit-learn estimator, obtained once (``exact`` may read a file)."""
        with self._exact_lock:
            if not self._exact_cache:
                self._exact_cache.append(self.exact())
            return self._exact_cache[0]


def _as_rows(X: Any, n_features: int) -> np.ndarray:
    rows = np.asarray(X)
    if rows.ndim == 1:
        rows = rows.reshape(-1, 1) if n_features == 1 else rows.reshape(1, -1)
    if rows.ndim != 2 or rows.shape[1] != n_features:
        raise ValueError(
            f"input has shape {rows.shape}; the model expects {n_features} feature column(s)"
        )
    if rows.dtype.kind not in "fiub":
        rows = rows.astype(np.float64)
    return rows


def fallback_decide(estimator: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's own ``decision_function`` and ``predict`` (labels +1 / -1)."""
    rows = X
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and isinstance(X, np.ndarray):
        import pandas as pd  # only when the model was fitted on named columns

        rows = pd.DataFrame(X, columns=list(names))
    scores = np.asarray(estimator.decision_function(rows), dtype=np.float64).reshape(-1)
    labels = np.asarray(estimator.predict(rows)).reshape(-1).astype(np.intp, copy=False)
    return scores, labels


def _split(estimator: Any) -> tuple[StandardScaler | None, OneClassSVM] | None:
    """(scaler or None, svm) if the estimator is exactly the shape we compile, else None."""
    # Imported here: a worker whose models all come from the packed store never needs them.
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    if type(estimator) is OneClassSVM:
        return None, estimator
    if type(estimator) is not Pipeline:
        return None
    steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
    if len(steps) == 1 and type(steps[0]) is OneClassSVM:
        return None, steps[0]
    if len(steps) == 2 and type(steps[0]) is StandardScaler and type(steps[1]) is OneClassSVM:
        return steps[0], steps[1]
    return None


def _exact_left_behind() -> Any:
    raise RuntimeError(
        "this compiled model came from another process without its estimator; "
        "load the model from the store to re-score guard-band rows"
    )


def _from_arrays(
    mean: np.ndarray,
    scale: np.ndarray,
    support_vectors: np.ndarray,
    dual_coef: np.ndarray,
    rho: float,
    gamma: float,
    has_scaler: bool,
    table: TaylorTable | None,
) -> FastOneClassSVM:
    """A compiled model rebuilt from its arrays (unpickling, see ``FastOneClassSVM.__reduce__``)."""
    return FastOneClassSVM(
        mean=mean,
        scale=scale,
        support_vectors=support_vectors,
        dual_coef=dual_coef,
        rho=rho,
        gamma=gamma,
        exact=_exact_left_behind,
        has_scaler=has_scaler,
        table=table,
    )


def compile_model(estimator: Any, exact: ExactModel | None = None) -> FastOneClassSVM | None:
    """Compile a fitted ``[StandardScaler ->] OneClassSVM(kernel="rbf")``; else None.

    ``exact`` returns the estimator for the rare guard-band rows (default: ``estimator``).
    """
    parts = _split(estimator)
    if parts is None:
        return None
    scaler, svm = parts
    if svm.kernel != "rbf" or getattr(svm, "_sparse", True):
        return None
    if not hasattr(svm, "support_vectors_") or not hasattr(svm, "_gamma"):
        return None  # not fitted: let scikit-learn raise its own message
    support = np.asarray(svm.support_vectors_, dtype=np.float64)
    if support.ndim != 2:
        return None
    n_features = support.shape[1]
    mean = np.zeros(n_features)
    scale = np.ones(n_features)
    if scaler is not None:
        if not hasattr(scaler, "n_features_in_") or scaler.n_features_in_ != n_features:
            return None
        if scaler.mean_ is not None:
            mean = np.asarray(scaler.mean_, dtype=np.float64)
        if scaler.scale_ is not None:
            scale = np.asarray(scaler.scale_, dtype=np.float64)
    return FastOneClassSVM(
        mean=mean,
        scale=scale,
        support_vectors=np.ascontiguousarray(support),
        dual_coef=np.asarray(svm.dual_coef_, dtype=np.float64).reshape(-1).copy(),
        rho=-float(np.asarray(svm.intercept_).reshape(-1)[0]),
        gamma=float(svm._gamma),
        exact=exact if exact is not None else (lambda: estimator),
        has_scaler=scaler is not None,
    ).with_table()


def decide(model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
    """Decision values and labels of any model: fast when compiled, else the estimator's own."""
    if isinstance(model, FastOneClassSVM):
        return model.decide(X)
    return fallback_decide(model, X)
