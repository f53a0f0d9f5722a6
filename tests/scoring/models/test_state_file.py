"""The default model's JSON file: the same estimator back, and nothing else accepted.
(Refusals through the store, naming pair and file: tests/scoring/models/test_store.py.)"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from scoring.models import state_file, training
from scoring.models.direct_fit import same_state
from tests.fixtures.models import default_pipeline

X = np.random.default_rng(5).normal(3.0, 0.5, (300, 1))


@pytest.mark.parametrize(
    "estimator",
    [
        default_pipeline(gamma=0.1, nu=0.02).fit(X),
        default_pipeline(gamma="scale", nu=0.1).fit(X),  # a numpy float64 _gamma
        default_pipeline(kernel="linear", nu=0.3).fit(np.c_[X, X**2]),
        OneClassSVM(nu=0.2).fit(X),
        StandardScaler().fit(X),
        training.fit_model(X, training.TrainParams())[0],  # calibrated intercept
    ],
    ids=["default", "gamma-scale", "two-features", "bare-svm", "scaler", "calibrated"],
)
def test_the_file_gives_back_the_same_estimator(estimator) -> None:
    data = state_file.dumps(estimator)
    back = state_file.loads(data)
    assert same_state(back, estimator)
    if hasattr(estimator, "decision_function"):
        grid = np.linspace(0, 6, 200).reshape(-1, 1)
        grid = grid if estimator.n_features_in_ == 1 else np.c_[grid, grid**2]
        assert back.decision_function(grid).tobytes() == estimator.decision_function(grid).tobytes()
    assert state_file.dumps(back) == data, "the same model writes the same bytes (its version)"


def test_the_rebuilt_arrays_are_the_estimators_own() -> None:
    back = state_file.loads(state_file.dumps(default_pipeline(gamma=0.1, nu=0.02).fit(X)))
    svm = back[-1]
    assert svm.support_vectors_.flags.writeable and svm.support_vectors_.dtype == np.float64
    assert svm.support_.dtype == np.int32
    back.fit(X)  # a loaded model can be fitted again like any other


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float64).reshape(3, 4).T,  # Fortran order: a transposed view
        np.arange(20, dtype=np.int64)[::3],  # strided
        np.arange(6, dtype=">f8").reshape(2, 3),  # big-endian: written little-endian
        np.array([True, False, True]),
        np.empty((0, 1)),
        np.float64(2.5),  # a numpy scalar: a 0-d array marked scalar
        np.int32(-7),
    ],
    ids=["fortran", "strided", "big-endian", "bool", "empty", "scalar-f8", "scalar-i4"],
)
def test_an_attribute_array_is_written_as_its_c_order_little_endian_bytes(array) -> None:
    estimator = StandardScaler().fit(X)
    estimator.extra_ = array
    node = json.loads(state_file.dumps(estimator))["model"]["estimator"]["state"]["extra_"]
    little = np.asarray(array).astype(np.asarray(array).dtype.newbyteorder("<"))
    assert node["ndarray"]["dtype"] == little.dtype.str
    assert node["ndarray"]["shape"] == list(np.shape(array))
    assert base64.b64decode(node["ndarray"]["data"]) == np.ascontiguousarray(little).tobytes()
    assert node["ndarray"].get("scalar", False) is isinstance(array, np.generic)
    back = state_file.loads(state_file.dumps(estimator)).extra_
    assert type(back) is type(array) and np.array_equal(back, array)


def test_anything_but_the_three_types_is_not_saved_in_this_format() -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    other = Pipeline([("scale", MinMaxScaler()), ("svm", OneClassSVM())]).fit(X)
    with pytest.raises(state_file.StateFileError, match="MinMaxScaler"):
        state_file.dumps(other)
    assert not state_file.can_save(other)
    odd = default_pipeline(gamma=0.1, nu=0.02).fit(X)
    odd[0].note_ = {"a": 1}  # a dict attribute: not a value this format holds
    with pytest.raises(state_file.StateFileError, match="dict"):
        state_file.dumps(odd)


def test_other_documents_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(state_file.StateFileError, match="not a state file"):
        state_file.loads(b"PK\x03\x04 a zip")
    with pytest.raises(state_file.StateFileError, match="format 'other/2'"):
        state_file.loads(json.dumps({"format": "other/2"}).encode())
    with pytest.raises(state_file.StateFileError, match="expected an estimator"):
        state_file.loads(json.dumps({"format": state_file.FORMAT, "model": [1]}).encode())
