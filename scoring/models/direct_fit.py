"""scikit-learn's fit of the default model, without its per-call checks: the same libsvm call,
the same fitted attributes, a sixth of the time.

Fitting ``Pipeline(StandardScaler(), OneClassSVM())`` on a pair's 288 rows takes about 1.8 ms
in scikit-learn 1.9 on this project's machine; libsvm's own work is 0.15 ms of it. The rest is
per-call machinery: input validation (``validate_data``) of the pipeline, the scaler and the
SVM, metadata routing, cloning the steps, callbacks. Training runs that machinery 100,000 times
on arrays it has already checked once for all pairs (finite float64, one feature column, the
hyperparameters validated by :meth:`TrainParams.validate`). Here the two steps are fitted by
the same computations scikit-learn performs, in its own order:

* the scaler as its ``partial_fit`` computes it on dense data without weights (the corrected
  two-pass mean and variance, the near-constant test, the scale);
* the SVM with the same ``sklearn.svm._libsvm.fit`` call ``BaseLibSVM._dense_fit`` makes, and
  the same attributes set afterwards (``shape_fit_``, ``_intercept_``, ``offset_``, ...).

The result is a plain fitted scikit-learn ``Pipeline``: every estimator attribute equal, every
array bit for bit, to what ``Pipeline.fit`` gives (:func:`same_state` compares them). That
rests on scikit-learn internals, so it is checked, not assumed: the tests compare the two on
many inputs, and :func:`fit_checked` compares them at run time on the first pair a process
fits; a difference (another scikit-learn version) sends that process back to scikit-learn's
own ``fit`` for every pair, with a warning, slower but never different.

Decision values (the calibration and the trimming ask for them) go the same way: the SVM's
``_dense_decision_function`` on the scaled rows, libsvm's answer without the checks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM, _libsvm
from sklearn.svm._base import LIBSVM_IMPL

log = logging.getLogger(__name__)

_ONE_CLASS = LIBSVM_IMPL.index("one_class")


def supports(pipeline: Any) -> bool:
    """Whether ``pipeline`` is the unfitted shape fitted here: exactly ``Pipeline(StandardScaler
    (centring and scaling), OneClassSVM)`` with a named kernel and no sample weights."""
    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        return False
    scaler, svm = pipeline.steps[0][1], pipeline.steps[1][1]
    return (
        type(scaler) is StandardScaler
        and scaler.with_mean
        and scaler.with_std
        and type(svm) is OneClassSVM
        and isinstance(svm.kernel, str)
        and svm.kernel != "precomputed"
    )


def fit(pipeline: Pipeline, X: np.ndarray) -> Pipeline:
    """Fit ``pipeline`` (see :func:`supports`) on finite float64 rows ``X`` in place, as
    ``pipeline.fit(X)`` would; returns it."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    scaler, svm = pipeline.steps[0][1], pipeline.steps[1][1]
    _fit_scaler(scaler, X)
    _fit_svm(svm, scaled(scaler, X))
    return pipeline


def scaled(scaler: StandardScaler, X: np.ndarray) -> np.ndarray:
    """``scaler.transform(X)`` for dense float64 rows (its ``X -= mean_; X /= scale_``)."""
    Z = np.array(X, dtype=np.float64, order="C")
    Z -= scaler.mean_
    Z /= scaler.scale_
    return Z


def decision_function(pipeline: Pipeline, X: np.ndarray) -> np.ndarray:
    """``pipeline.decision_function(X)`` of a pipeline fitted here or by scikit-learn: the
    libsvm call of the SVM's ``_dense_decision_function`` on the scaled rows (which are
    already the C-ordered float64 its ``check_array`` makes, the most of its cost)."""
    scaler, svm = pipeline.steps[0][1], pipeline.steps[1][1]
    return _libsvm.decision_function(
        scaled(scaler, X),
        svm.support_,
        svm.support_vectors_,
        svm._n_support,  # noqa: SLF001
        svm._dual_coef_,  # noqa: SLF001
        svm._intercept_,  # noqa: SLF001
        svm._probA,  # noqa: SLF001
        svm._probB,  # noqa: SLF001
        svm_type=_ONE_CLASS,
        kernel=svm.kernel,
        degree=svm.degree,
        cache_size=svm.cache_size,
        coef0=svm.coef0,
        gamma=svm._gamma,  # noqa: SLF001
    ).ravel()


class Answers:
    """A fitted pipeline (see :func:`supports`) that answers ``decision_function`` through
    :func:`decision_function`: scikit-learn's values, bit for bit, without its checks. What
    training gives the store for a model's probes (seven rows: 18 us, against 100 us through
    the compiled model and more through scikit-learn's own call)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def decision_function(self, X: Any) -> np.ndarray:
        return decision_function(self.pipeline, np.asarray(X, dtype=np.float64))


def _fit_scaler(scaler: StandardScaler, X: np.ndarray) -> None:
    # StandardScaler.partial_fit on a first call with dense finite rows and no sample weights,
    # that is scikit-learn's _incremental_mean_and_var from a zero count (the corrected
    # two-pass variance of Chan, Golub and LeVeque), its _is_constant_feature and its
    # _handle_zeros_in_scale, term for term. Its generic versions dispatch through the array
    # API on every call, 0.3 ms of a 0.5 ms fit. Attributes are set in its order too.
    n_features = X.shape[1]
    scaler.n_features_in_ = n_features
    scaler.n_samples_seen_ = np.zeros(n_features, dtype=np.int64)
    scaler.mean_, scaler.var_ = 0.0, 0.0
    last_count = np.zeros(n_features)  # its count as float64
    last_sum = scaler.mean_ * last_count
    new_sum = np.sum(X, axis=0)
    new_count = X.shape[0] - np.zeros(n_features)  # no NaN: every row counts
    count = last_count + new_count
    mean = (last_sum + new_sum) / count
    deviations = X - new_sum / new_count
    correction = np.sum(deviations, axis=0)
    deviations **= 2
    unnormalized = np.sum(deviations, axis=0)
    unnormalized -= correction**2 / new_count
    variance = unnormalized / count  # (from a zero count the earlier terms drop out)
    scaler.mean_, scaler.var_, scaler.n_samples_seen_ = mean, variance, count
    if np.max(count) == np.min(count):
        scaler.n_samples_seen_ = count[0]
    seen = scaler.n_samples_seen_
    eps = np.finfo(np.float64).eps
    constant = variance <= seen * eps * variance + (seen * mean * eps) ** 2
    scale = np.sqrt(variance)
    scale[constant] = 1.0
    scaler.scale_ = scale


def _fit_svm(svm: OneClassSVM, Z: np.ndarray) -> None:
    # BaseLibSVM.fit -> _dense_fit, then OneClassSVM.fit's offset_.
    svm._sparse = False  # noqa: SLF001
    svm.n_features_in_ = Z.shape[1]
    svm._effective_probability = svm.probability  # noqa: SLF001
    svm._gamma = _gamma(svm, Z)  # noqa: SLF001
    _libsvm.set_verbosity_wrap(svm.verbose)  # libsvm's global switch: it prints unless told not to
    (
        svm.support_,
        svm.support_vectors_,
        svm._n_support,  # noqa: SLF001
        svm.dual_coef_,
        svm.intercept_,
        svm._probA,  # noqa: SLF001
        svm._probB,  # noqa: SLF001
        svm.fit_status_,
        svm._num_iter,  # noqa: SLF001
    ) = _libsvm.fit(
        Z,
        np.ones(Z.shape[0]),
        svm_type=_ONE_CLASS,
        sample_weight=np.empty(0),
        class_weight=np.empty(0),
        kernel=svm.kernel,
        C=svm.C,
        nu=svm.nu,
        probability=svm._effective_probability,  # noqa: SLF001
        degree=svm.degree,
        shrinking=svm.shrinking,
        tol=svm.tol,
        cache_size=svm.cache_size,
        coef0=svm.coef0,
        gamma=svm._gamma,  # noqa: SLF001
        epsilon=svm.epsilon,
        max_iter=svm.max_iter,
        # One-class training draws no random numbers (libsvm uses its seed only for
        # probability estimates and cross-validation), so scikit-learn's draw is not needed.
        random_seed=0,
    )
    svm._warn_from_fit_status()  # noqa: SLF001
    svm.shape_fit_ = Z.shape
    svm._intercept_ = svm.intercept_.copy()  # noqa: SLF001
    svm._dual_coef_ = svm.dual_coef_  # noqa: SLF001
    if not (np.isfinite(svm._intercept_).all() and np.isfinite(svm._dual_coef_).all()):  # noqa: SLF001
        raise ValueError(
            "The dual coefficients or intercepts are not finite. The input data may contain "
            "large values and need to be preprocessed."
        )
    svm.n_iter_ = svm._num_iter.item()  # noqa: SLF001
    svm.offset_ = -svm._intercept_  # noqa: SLF001


def _gamma(svm: OneClassSVM, Z: np.ndarray) -> float:
    if svm.gamma == "scale":
        variance = Z.var()
        return 1.0 / (Z.shape[1] * variance) if variance != 0 else 1.0
    if svm.gamma == "auto":
        return 1.0 / Z.shape[1]
    if isinstance(svm.gamma, Real):
        return svm.gamma
    raise ValueError(f"gamma {svm.gamma!r}: use scale, auto or a positive number")


def same_state(a: Any, b: Any) -> bool:
    """Whether two fitted estimators (or attribute values) are the same: same types, the same
    attributes, arrays equal bit for bit (dtype, shape and bytes)."""
    if type(a) is not type(b):
        return False
    if hasattr(a, "__getstate__") and hasattr(a, "get_params"):
        return same_state(a.__getstate__(), b.__getstate__())
    if isinstance(a, Mapping):
        return list(a) == list(b) and all(same_state(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same_state, a, b))
    if isinstance(a, (np.ndarray, np.generic)):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return a == b or (a != a and b != b)  # noqa: PLR0124 - NaN equals NaN here
    return a == b


class _Checked:
    """Per process: whether the direct fit matched scikit-learn's on the first pair it fitted
    (None: not compared yet)."""

    lock = threading.Lock()
    agrees: bool | None = None


def fit_checked(make: Callable[[], Pipeline], X: np.ndarray) -> Pipeline:
    """``make()`` fitted on ``X``: directly, once the first call in this process showed the
    direct fit equal to scikit-learn's ``fit`` (compared on that call's own rows); else, and
    for any shape :func:`supports` refuses, with scikit-learn's ``fit``."""
    pipeline = make()
    if not supports(pipeline) or _Checked.agrees is False:
        return pipeline.fit(X)
    if _Checked.agrees is None:
        with _Checked.lock:
            if _Checked.agrees is None:
                reference = make().fit(X)
                fit(pipeline, X)
                _Checked.agrees = same_state(pipeline, reference)
                if not _Checked.agrees:
                    import sklearn

                    log.warning(
                        "the direct fit differs from scikit-learn %s's own on the first pair; "
                        "this process fits with scikit-learn's fit instead (same models, slower)",
                        sklearn.__version__,
                    )
                return reference
    return fit(pipeline, X)
