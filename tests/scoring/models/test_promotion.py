"""The promotion gate: every rule rejects a candidate that breaks it, on real fitted models
and their real saved files."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.models.promotion import (
    ADDED,
    PROMOTED,
    REJECTED,
    GateRules,
    decide,
    flag_rate,
    non_finite_parameters,
    probe_problem,
)
from scoring.models.store import ModelStore
from tests.fixtures.models import fitted_pipeline

RULES = GateRules(min_rows=100, max_flag_rate_delta=0.05)


def _metrics(**overrides):
    values = {
        "device": "d",
        "sensor": "s",
        "rows": 500,
        "holdout_rows": 100,
        "candidate_flag_rate": 0.03,
        "current_flag_rate": 0.02,
        "current_version": "v-old",
        "non_finite": [],
    }
    return {**values, **overrides}


def test_a_candidate_passing_every_rule_is_promoted() -> None:
    decision = decide(_metrics(), RULES, probe_failure=None, candidate_version="v-new")
    assert decision.outcome == PROMOTED and decision.reasons == []


def test_a_pair_without_a_model_gets_one_without_a_flag_rate_comparison() -> None:
    metrics = _metrics(current_version=None, current_flag_rate=None, candidate_flag_rate=0.5)
    assert decide(metrics, RULES, probe_failure=None, candidate_version="v").outcome == ADDED


def test_enough_rows_rule() -> None:
    decision = decide(_metrics(rows=99), RULES, probe_failure=None, candidate_version="v")
    assert decision.outcome == REJECTED
    assert decision.reasons == ["enough rows: trained on 99, the gate needs 100"]


def test_flag_rate_rule_bounds_the_difference_both_ways() -> None:
    for candidate in (0.08, 0.0):  # 6 points above a current 0.02 (refused), 2 below (kept)
        metrics = _metrics(candidate_flag_rate=candidate, current_flag_rate=0.02)
        outcome = decide(metrics, RULES, probe_failure=None, candidate_version="v").outcome
        assert outcome == (REJECTED if candidate == 0.08 else PROMOTED)
    lower = _metrics(candidate_flag_rate=0.01, current_flag_rate=0.10)
    decision = decide(lower, RULES, probe_failure=None, candidate_version="v")
    assert decision.outcome == REJECTED and "flag rate" in decision.reasons[0]


def test_flag_rate_rule_rejects_when_nothing_was_held_out() -> None:
    metrics = _metrics(holdout_rows=0, candidate_flag_rate=None)
    decision = decide(metrics, RULES, probe_failure=None, candidate_version="v")
    assert decision.outcome == REJECTED and "no held-out rows" in decision.reasons[0]


def test_finite_parameters_rule_finds_a_nan_in_a_fitted_model() -> None:
    pipeline = fitted_pipeline(np.random.default_rng(0).normal(size=200), nu=0.05, gamma=0.1)
    assert non_finite_parameters(pipeline) == []
    pipeline.steps[1][1]._dual_coef_[0, 0] = np.nan
    found = non_finite_parameters(pipeline)
    assert "oneclasssvm._dual_coef_" in found  # dual_coef_ may share its memory
    decision = decide(_metrics(non_finite=found), RULES, probe_failure=None, candidate_version="v")
    assert decision.outcome == REJECTED and "_dual_coef_" in decision.reasons[0]


def test_probe_rule_on_a_saved_model_file(tmp_path) -> None:
    pipeline = fitted_pipeline(np.random.default_rng(1).normal(size=200), nu=0.05, gamma=0.1)
    store = ModelStore(tmp_path)
    store.save("d", "s", pipeline, training_rows=200, params={})
    loaded = store.load("d", "s")
    entry = store.entry("d", "s")
    assert probe_problem(loaded.pipeline, entry) is None
    tampered = {**entry, "probes": {**entry["probes"]}}
    tampered["probes"]["outputs"] = [v + 1.0 for v in entry["probes"]["outputs"]]
    problem = probe_problem(loaded.pipeline, tampered)
    assert problem == "answers on the probe inputs differ from the recorded ones"
    decision = decide(_metrics(), RULES, probe_failure=problem, candidate_version="v")
    assert decision.outcome == REJECTED and decision.reasons[0].startswith("probe checks")


def test_flag_rate_is_the_share_predict_flags() -> None:
    pipeline = fitted_pipeline(np.random.default_rng(2).normal(size=300), nu=0.05, gamma=0.1)
    inside, outside = np.zeros((10, 1)), np.full((10, 1), 50.0)
    assert flag_rate(pipeline, inside) == 0.0
    assert flag_rate(pipeline, np.vstack([inside, outside])) == 0.5
    assert flag_rate(pipeline, np.empty((0, 1))) is None


@pytest.mark.parametrize("kwargs", [{"min_rows": 0}, {"max_flag_rate_delta": 1.5}])
def test_bad_rules_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        GateRules(**kwargs)
