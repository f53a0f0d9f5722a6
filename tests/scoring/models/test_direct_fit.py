"""The direct fit is scikit-learn's fit, attribute for attribute and bit for bit, or not used."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.svm import _libsvm

from scoring.models import direct_fit
from scoring.models import training as train
from tests.fixtures.models import default_pipeline

RNG = np.random.default_rng(2026)

DATA = {
    "288 gaussian rows": RNG.normal(20.0, 2.0, (288, 1)),
    "10 rows": RNG.normal(0.0, 1.0, (10, 1)),
    "a constant column": np.full((40, 1), 7.25),
    "a large offset": RNG.normal(1e9, 1e-3, (200, 1)),
    "heavy tails": RNG.standard_t(1.5, (500, 1)),
    "two features": RNG.normal(0.0, [1.0, 50.0], (150, 2)),
    "two states": np.r_[RNG.normal(10, 0.2, 300), RNG.normal(14, 0.2, 90)].reshape(-1, 1),
}
PARAMS = [
    {"kernel": "rbf", "gamma": 0.1, "nu": 0.02},
    {"kernel": "rbf", "gamma": "scale", "nu": 0.1},
    {"kernel": "rbf", "gamma": "auto", "nu": 0.5},
    {"kernel": "linear", "nu": 0.05},
    {"kernel": "poly", "gamma": 0.3, "nu": 0.1, "degree": 2},
    {"kernel": "sigmoid", "gamma": 0.01, "nu": 0.2},
]


@pytest.fixture(autouse=True)
def _fresh_check():
    """Each test starts as a fresh process would: not yet compared with scikit-learn."""
    direct_fit._Checked.agrees = None
    yield
    direct_fit._Checked.agrees = None


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: "-".join(map(str, p.values())))
@pytest.mark.parametrize("name", DATA)
def test_the_direct_fit_is_scikit_learns_fit(name: str, params: dict) -> None:
    X = DATA[name]
    theirs = default_pipeline(**params).fit(X)
    ours = direct_fit.fit(default_pipeline(**params), X)
    assert direct_fit.same_state(ours, theirs)
    grid = np.linspace(X.min(axis=0) - 3, X.max(axis=0) + 3, 97)
    assert direct_fit.decision_function(ours, grid).tobytes() == (
        theirs.decision_function(grid).tobytes()
    )


@pytest.mark.parametrize("params", PARAMS[:3], ids=lambda p: "-".join(map(str, p.values())))
def test_the_direct_answers_are_scikit_learns_decision_values(params: dict) -> None:
    X = DATA["two states"]
    fitted = default_pipeline(**params).fit(X)
    probes = [[9.0], [10.0], [12.0], [14.2], [30.0]]  # a list, as the manifest records them
    answers = direct_fit.Answers(fitted).decision_function(probes)
    assert answers.tobytes() == fitted.decision_function(np.asarray(probes)).tobytes()


def test_same_state_sees_one_bit_and_one_attribute() -> None:
    X = DATA["288 gaussian rows"]
    a, b = (default_pipeline(gamma=0.1, nu=0.02).fit(X) for _ in range(2))
    assert direct_fit.same_state(a, b)
    b[-1].intercept_ = np.nextafter(b[-1].intercept_, np.inf)
    assert not direct_fit.same_state(a, b)
    c = default_pipeline(gamma=0.1, nu=0.02).fit(X)
    c[0].extra_ = 1
    assert not direct_fit.same_state(a, c)
    d = default_pipeline(gamma=0.1, nu=0.02).fit(X)
    d[0].n_samples_seen_ = int(d[0].n_samples_seen_)  # same value, another type
    assert not direct_fit.same_state(a, d)


@pytest.mark.parametrize("seed", [3, 4])
def test_the_product_fit_gives_the_models_scikit_learns_fit_gives(seed: int) -> None:
    """Trimming, the fit and the calibration through the direct fit and decision values: the
    same models as through scikit-learn's fit and decision_function."""
    from tests.fixtures.other_fleet import other_fleet

    fleet = other_fleet(seed=seed)
    groups = [g[["Value"]].to_numpy() for _, g in fleet.train.groupby(["Device", "Sensor"])]
    params = train.TrainParams()
    ours = [train.fit_model(X, params)[0] for X in groups]
    theirs = [train.fit_model(X, params, direct=False)[0] for X in groups]
    assert len(groups) >= 8
    assert all(direct_fit.same_state(a, b) for a, b in zip(ours, theirs, strict=True))
    trimmed = [len(train.fit_model(X, params)[1]) < len(X) for X in groups]
    assert any(trimmed), "the trimming's judge was asked on some pair"


def test_a_process_whose_scikit_learn_fits_otherwise_falls_back_and_says_so(
    monkeypatch, caplog
) -> None:
    real = direct_fit.fit

    def drifting(pipeline, X):  # what another scikit-learn version could make of the mimicry
        real(pipeline, X)
        pipeline[-1].offset_ = pipeline[-1].offset_ + 1e-12
        return pipeline

    monkeypatch.setattr(direct_fit, "fit", drifting)
    fits = []
    real_fit = type(default_pipeline()).fit
    monkeypatch.setattr(
        type(default_pipeline()), "fit", lambda self, X: fits.append(1) or real_fit(self, X)
    )
    make = lambda: default_pipeline(gamma=0.1, nu=0.02)  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="scoring.models.direct_fit"):
        first = direct_fit.fit_checked(make, DATA["288 gaussian rows"])
        second = direct_fit.fit_checked(make, DATA["two states"])
    assert direct_fit._Checked.agrees is False
    assert len(fits) == 2, "the first pair fitted by scikit-learn to compare, the next by it too"
    assert direct_fit.same_state(first, make().fit(DATA["288 gaussian rows"]))
    assert direct_fit.same_state(second, make().fit(DATA["two states"]))
    assert "differs from scikit-learn" in caplog.text and "slower" in caplog.text


def test_once_checked_the_direct_fit_is_used(monkeypatch) -> None:
    make = lambda: default_pipeline(gamma=0.1, nu=0.02)  # noqa: E731
    direct_fit.fit_checked(make, DATA["288 gaussian rows"])
    assert direct_fit._Checked.agrees is True
    real_fit = type(default_pipeline()).fit
    fits = []
    monkeypatch.setattr(
        type(default_pipeline()), "fit", lambda self, X: fits.append(1) or real_fit(self, X)
    )
    model = direct_fit.fit_checked(make, DATA["two states"])
    assert fits == [] and direct_fit.same_state(model, make().fit(DATA["two states"]))


def test_libsvm_stays_quiet(capfd) -> None:
    """libsvm prints its solver's progress unless told not to, a switch global to the process:
    the direct fit sets it as scikit-learn does before every fit."""
    _libsvm.set_verbosity_wrap(1)
    direct_fit.fit(default_pipeline(gamma=0.1, nu=0.02), DATA["288 gaussian rows"])
    assert "optimization finished" not in capfd.readouterr().out
