"""The promotion gate: whether a pair's freshly trained candidate replaces its current model.

A candidate is promoted only if it passes every rule (each configurable, all documented in the
README's "Models that stay right"):

1. **enough rows**: it was trained on at least ``min_rows`` rows (``trainGateMinRows``);
2. **probe checks**: its saved file rebuilds and answers its recorded probe inputs as the
   fitted model did, with finite values (:func:`probe_problem`);
3. **finite parameters**: no NaN or infinity in any fitted array (scaler, support vectors,
   coefficients, offset) (:func:`non_finite_parameters`);
4. **flag rate within a bound**: on the pair's most recent readings, held out of its training
   (``trainHoldoutPercent``), the share it flags as anomalous differs from the current
   model's share by at most ``max_flag_rate_delta`` (``trainGateMaxFlagRateDeltaPercent``,
   in percentage points). A pair without a current model has nothing to compare with: it gets
   the candidate when rules 1-3 pass ("added").

Outcomes per pair: ``promoted`` (replaces the current model), ``added`` (the pair had none),
``rejected`` (a rule failed: the current model, if any, stays), ``failed`` (training itself
failed). Pairs not retrained keep their model (counted as ``kept``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.models.store import probe_outputs, probes_agree

PROMOTED, ADDED, REJECTED, FAILED = "promoted", "added", "rejected", "failed"


@dataclass(frozen=True)
class GateRules:
    """The gate's bounds (see the module docstring for each rule)."""

    min_rows: int = 100
    max_flag_rate_delta: float = 0.05  # a share: 0.05 is 5 percentage points

    def __post_init__(self) -> None:
        if self.min_rows < 1:
            raise ValueError(f"min_rows {self.min_rows}: must be at least 1")
        if not 0.0 <= self.max_flag_rate_delta <= 1.0:
            raise ValueError(f"max_flag_rate_delta {self.max_flag_rate_delta}: must be in [0, 1]")


@dataclass
class Decision:
    """One pair's outcome and every reason it was not promoted."""

    device: str
    sensor: str
    outcome: str
    reasons: list[str] = field(default_factory=list)
    candidate_version: str | None = None
    current_version: str | None = None
    rows: int = 0
    holdout_rows: int = 0
    candidate_flag_rate: float | None = None
    current_flag_rate: float | None = None


def flag_rate(pipeline: Any, X: np.ndarray) -> float | None:
    """The share of rows ``pipeline`` flags (``predict`` -1, as scoring's IsAnomaly), or None
    for no rows."""
    if not len(X):
        return None
    return float(np.mean(np.asarray(pipeline.predict(X)).ravel() == -1))


def non_finite_parameters(pipeline: Any) -> list[str]:
    """The fitted arrays (``step.attr_``) holding NaN or infinity, named; [] when all finite."""
    steps = pipeline.steps if hasattr(pipeline, "steps") else [("model", pipeline)]
    bad = []
    for step_name, step in steps:
        for attr, value in sorted(vars(step).items()):
            if not attr.endswith("_") or attr.startswith("__"):  # libsvm's _dual_coef_ too
                continue
            try:
                array = np.asarray(value, dtype="float64")
            except (TypeError, ValueError):
                continue
            if not np.all(np.isfinite(array)):
                bad.append(f"{step_name}.{attr}")
    return bad


def probe_problem(pipeline: Any, entry: Mapping[str, Any]) -> str | None:
    """Why the rebuilt model does not pass its probe checks, or None when it does: its
    answers on the recorded probe inputs must be finite and agree with the recorded ones."""
    probes = entry.get("probes") or {}
    try:
        inputs = np.asarray(probes["inputs"], dtype="float64")
        expected = np.asarray(probes["outputs"], dtype="float64")
        actual = probe_outputs(pipeline, inputs)
    except Exception as exc:  # noqa: BLE001 - any failure to answer is the finding
        return f"probe inputs cannot be answered ({type(exc).__name__}: {exc})"
    if not len(inputs):
        return "no probe inputs recorded"
    if not np.all(np.isfinite(actual)):
        return "non-finite answers on the probe inputs"
    if not probes_agree(actual, expected):
        return "answers on the probe inputs differ from the recorded ones"
    return None


def decide(
    metrics: Mapping[str, Any],
    rules: GateRules,
    *,
    probe_failure: str | None,
    candidate_version: str | None,
) -> Decision:
    """The decision for one pair from the train step's ``metrics`` (rows, holdout_rows,
    candidate_flag_rate, current_flag_rate, current_version, non_finite) and the promote
    step's own probe check of the candidate file."""
    decision = Decision(
        device=str(metrics["device"]),
        sensor=str(metrics["sensor"]),
        outcome=PROMOTED,
        candidate_version=candidate_version,
        current_version=metrics.get("current_version"),
        rows=int(metrics.get("rows") or 0),
        holdout_rows=int(metrics.get("holdout_rows") or 0),
        candidate_flag_rate=metrics.get("candidate_flag_rate"),
        current_flag_rate=metrics.get("current_flag_rate"),
    )
    reasons = decision.reasons
    if decision.rows < rules.min_rows:
        reasons.append(f"enough rows: trained on {decision.rows}, the gate needs {rules.min_rows}")
    if probe_failure:
        reasons.append(f"probe checks: {probe_failure}")
    non_finite: Sequence[str] = metrics.get("non_finite") or []
    if non_finite:
        reasons.append(f"finite parameters: non-finite values in {', '.join(non_finite)}")
    if decision.current_version is not None:
        reasons.extend(_flag_rate_problems(decision, rules))
    if reasons:
        decision.outcome = REJECTED
    elif decision.current_version is None:
        decision.outcome = ADDED
    return decision


def _flag_rate_problems(decision: Decision, rules: GateRules) -> list[str]:
    candidate, current = decision.candidate_flag_rate, decision.current_flag_rate
    if decision.holdout_rows < 1 or candidate is None or current is None:
        return ["flag rate: no held-out rows to compare the candidate with the current model"]
    delta = abs(float(candidate) - float(current))
    if math.isnan(delta) or delta > rules.max_flag_rate_delta + 1e-12:
        return [
            f"flag rate: the candidate flags {candidate:.1%} of {decision.holdout_rows} held-out "
            f"rows, the current model {current:.1%}; allowed difference "
            f"{rules.max_flag_rate_delta:.1%}"
        ]
    return []


def failed(device: str, sensor: str, error: str, current_version: str | None) -> Decision:
    """A pair whose training failed: its current model (if any) stays."""
    return Decision(device, sensor, FAILED, [f"training failed: {error}"], None, current_version)
