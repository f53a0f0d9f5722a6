"""The fast OneClassSVM kernel gives scikit-learn's labels and decision values (within 1e-9)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import OneClassSVM

from scoring.models import kernel as fast_ocsvm
from scoring.models.kernel import (
    TAYLOR_ERROR_FACTOR,
    FastOneClassSVM,
    compile_model,
    decide,
)
from tests.fixtures.models import default_pipeline, fitted_pipeline

TOLERANCE = 1e-9


def _random_model(rng: np.random.Generator, n_features: int) -> tuple[Pipeline, np.ndarray]:
    n = int(rng.integers(15, 400))
    centre = rng.normal(0, 50, n_features)
    spread = rng.uniform(0.01, 20, n_features)
    X = centre + spread * rng.standard_normal((n, n_features))
    if rng.random() < 0.3:  # a second mode: disjoint inlier regions
        X[: n // 3] += spread * rng.uniform(3, 8)
    gamma = ["scale", "auto", float(rng.uniform(0.05, 30))][int(rng.integers(3))]
    svm = OneClassSVM(kernel="rbf", gamma=gamma, nu=float(rng.uniform(0.005, 0.6)))
    model = make_pipeline(StandardScaler(), svm) if rng.random() < 0.8 else svm
    return model.fit(X), X


def _boundary_points(model, X: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """Pairs of points straddling the decision boundary, found by bisection to the last bit."""
    decision = model.decision_function
    if hasattr(model, "feature_names_in_"):
        names = list(model.feature_names_in_)
        decision = lambda rows: model.decision_function(pd.DataFrame(rows, columns=names))  # noqa: E731
    inside = decision(X) > 0
    inliers, outliers = X[inside], X[~inside]
    if not len(inliers):
        return np.empty((0, X.shape[1]))
    if not len(outliers):
        outliers = (X.mean(axis=0) + 100 * X.std(axis=0) + 100)[None, :]
    a = inliers[rng.integers(len(inliers), size=count)].copy()
    b = outliers[rng.integers(len(outliers), size=count)].copy()
    for _ in range(200):  # bisection of every segment a (inlier) -> b (outlier) at once
        m = (a + b) / 2
        moving = ~(np.all(m == a, axis=1) | np.all(m == b, axis=1))
        if not moving.any():
            break
        positive = decision(m) > 0
        a[moving & positive] = m[moving & positive]
        b[moving & ~positive] = m[moving & ~positive]
    # Points a little off the boundary too: decision values from ~1e-16 up to ~1e-6.
    direction = (b - a) / np.maximum(np.linalg.norm(b - a, axis=1, keepdims=True), 1e-300)
    scale = np.maximum(np.abs(a), 1.0)
    offsets = np.logspace(-15, -7, 9)
    near = [a + sign * t * scale * direction for t in offsets for sign in (-1, 1)]
    return np.concatenate([a, b, *near])


def _assert_matches(model, fast: FastOneClassSVM, X: np.ndarray, what: str) -> None:
    scores, labels = fast.decide(X)
    expected_scores = model.decision_function(X)
    expected_labels = model.predict(X)
    worst = float(np.max(np.abs(scores - expected_scores), initial=0.0))
    assert worst <= TOLERANCE, f"{what}: decision values differ by {worst:g}"
    mismatched = np.flatnonzero(labels != expected_labels)
    assert mismatched.size == 0, (
        f"{what}: {mismatched.size} labels differ, e.g. row {X[mismatched[0]]} "
        f"(ours {labels[mismatched[0]]}, scikit-learn {expected_labels[mismatched[0]]})"
    )
    assert labels.dtype.kind == "i" and set(np.unique(labels)) <= {-1, 1}


def test_error_bound_of_the_table_is_below_rounding():
    assert TAYLOR_ERROR_FACTOR < 1e-15


@pytest.mark.parametrize("n_features", [1, 2, 3])
def test_labels_and_values_equal_scikit_learn_on_random_models(n_features):
    rng = np.random.default_rng(100 + n_features)
    for trial in range(40):
        model, X = _random_model(rng, n_features)
        fast = compile_model(model)
        assert fast is not None, f"trial {trial}: default model not compiled"
        span = X.max(axis=0) - X.min(axis=0) + 1
        probes = np.concatenate(
            [
                X,
                X.min(axis=0) + span * rng.uniform(-0.5, 1.5, (500, n_features)),
                X.mean(axis=0) + span * rng.uniform(-1e4, 1e4, (20, n_features)),  # far away
                _boundary_points(model, X, rng, 15),
            ]
        )
        _assert_matches(model, fast, probes, f"{n_features} feature(s), trial {trial}")


def test_one_feature_models_use_the_table_and_many_features_the_direct_kernel():
    rng = np.random.default_rng(7)
    model, _ = _random_model(rng, 1)
    assert compile_model(model).table is not None
    model, _ = _random_model(rng, 2)
    assert compile_model(model).table is None


def test_direct_kernel_matches_when_the_table_would_be_too_large():
    rng = np.random.default_rng(3)
    X = rng.normal(0, 1, (300, 1))
    model = fitted_pipeline(X, gamma=5e5, nu=0.3)
    fast = compile_model(model)
    assert fast.table is None, "a 5e5-gamma model should not build a huge table"
    probes = np.concatenate([X, rng.normal(0, 2, (300, 1)), _boundary_points(model, X, rng, 10)])
    _assert_matches(model, fast, probes, "huge gamma")


def test_default_product_model_on_boundary_points_and_a_long_series():
    rng = np.random.default_rng(11)
    t = np.arange(1440)
    X = (20 + 5 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 1, t.size)).reshape(-1, 1)
    model = default_pipeline(kernel="rbf", gamma="scale", nu=0.02)
    model.fit(X)
    fast = compile_model(model)
    probes = np.concatenate(
        [X, rng.uniform(-40, 80, (200_000, 1)), _boundary_points(model, X, rng, 60)]
    )
    _assert_matches(model, fast, probes, "default model")


def test_guard_band_rows_are_rescored_by_the_estimator_itself():
    rng = np.random.default_rng(5)
    X = rng.normal(10, 3, (500, 1))
    model = fitted_pipeline(X, nu=0.05)
    calls = []

    def exact():
        calls.append(1)
        return model

    fast = compile_model(model, exact=exact)
    fast.decide(X[:10] * 0 + 10.0)  # deep inside the inlier region: no guard rows
    assert calls == [], "the exact estimator was needed for rows far from the boundary"
    boundary = _boundary_points(model, X, rng, 5)
    _assert_matches(model, fast, boundary, "boundary")
    fast.decide(boundary)
    assert calls == [1], "boundary rows must be re-scored by the estimator, loaded once"


def test_decision_exactly_zero_is_an_outlier_like_libsvm():
    rng = np.random.default_rng(2)
    X = rng.normal(0, 1, (200, 1))
    model = fitted_pipeline(X, nu=0.1)

    class ZeroDecision:
        """Stands in for the estimator: every guard-band row decides exactly 0."""

        def decision_function(self, rows):
            return np.zeros(len(rows))

        def predict(self, rows):
            return -np.ones(len(rows), dtype=int)

    fast = compile_model(model, exact=ZeroDecision)
    on_boundary = _boundary_points(model, X, rng, 3)[:6]  # the bisected pairs only
    scores, labels = fast.decide(on_boundary)
    assert np.all(scores == 0) and np.all(labels == -1)


def test_pipeline_fitted_on_named_columns_rescoring_without_warnings():
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"Value": rng.normal(5, 2, 300)})
    model = fitted_pipeline(frame, nu=0.05)
    fast = compile_model(model)
    boundary = _boundary_points(model, frame.to_numpy(), rng, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores, labels = fast.decide(boundary)
    named = pd.DataFrame(boundary, columns=["Value"])
    assert np.array_equal(labels, model.predict(named))
    assert np.allclose(scores, model.decision_function(named), rtol=0, atol=TOLERANCE)


def test_float32_and_integer_inputs_match_scikit_learn():
    rng = np.random.default_rng(4)
    X = rng.normal(100, 10, (400, 1))
    model = fitted_pipeline(X, nu=0.05)
    fast = compile_model(model)
    for probes in (X.astype(np.float32), np.round(X).astype(np.int64)):
        _assert_matches(model, fast, probes, f"{probes.dtype} input")


def test_one_dimensional_input_is_read_as_a_column():
    rng = np.random.default_rng(6)
    X = rng.normal(0, 1, (100, 1))
    model = fitted_pipeline(X, nu=0.1)
    scores, labels = compile_model(model).decide(X[:, 0])
    assert np.array_equal(labels, model.predict(X))


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([[1.0], [np.nan]]), "NaN or infinity"),
        (np.array([[1.0], [np.inf]]), "NaN or infinity"),
        (np.ones((3, 2)), "expects 1 feature column"),
    ],
)
def test_bad_input_is_named(bad, message):
    X = np.random.default_rng(1).normal(0, 1, (50, 1))
    fast = compile_model(fitted_pipeline(X))
    with pytest.raises(ValueError, match=message):
        fast.decide(bad)


def _fallback_models():
    rng = np.random.default_rng(8)
    X = rng.normal(0, 1, (200, 2))

    class MyScaler(StandardScaler):
        """A subclass could change transform(): it must not be compiled."""

    yield "isolation forest", IsolationForest(random_state=0, n_estimators=20).fit(X), X
    yield "linear kernel", OneClassSVM(kernel="linear", nu=0.1).fit(X), X
    yield "poly kernel", fitted_pipeline(X, kernel="poly"), X
    yield (
        "extra step",
        make_pipeline(StandardScaler(), PCA(n_components=2), OneClassSVM()).fit(X),
        X,
    )
    yield "other scaler", make_pipeline(MinMaxScaler(), OneClassSVM()).fit(X), X
    yield "scaler subclass", make_pipeline(MyScaler(), OneClassSVM()).fit(X), X
    yield "sparse fit", OneClassSVM(nu=0.1).fit(sparse.csr_matrix(X)), X
    yield "unfitted", default_pipeline(), X


@pytest.mark.parametrize("name, model, X", list(_fallback_models()), ids=lambda v: str(v)[:20])
def test_other_estimators_take_their_own_methods(name, model, X):
    assert compile_model(model) is None, f"{name} must not be compiled"
    if name == "unfitted":
        with pytest.raises(Exception, match="not fitted"):
            decide(model, X)
        return
    scores, labels = decide(model, X)
    assert np.array_equal(scores, model.decision_function(X)), name
    assert np.array_equal(labels, model.predict(X)), name


def test_decide_uses_the_compiled_model_when_given_one(monkeypatch):
    X = np.random.default_rng(0).normal(0, 1, (100, 1))
    model = fitted_pipeline(X)
    fast = compile_model(model)
    monkeypatch.setattr(fast_ocsvm, "fallback_decide", None)  # the fast path must not need it
    scores, labels = decide(fast, X[:5] * 0)
    assert labels.tolist() == model.predict(X[:5] * 0).tolist()
