"""Correctness: every strategy's predictions against scikit-learn's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batchscore.bench.context import BenchContext
from batchscore.bench.modes import LOOP, PROCESS, SCORE_MODES, SCORE_TOLERANCE


def compare_predictions(
    candidate: pd.DataFrame, reference: pd.DataFrame, what: str
) -> dict[str, Any]:
    """Same rows (by Device, Sensor, TS), all scored, identical labels, scores within 1e-9."""
    keys = ["Device", "Sensor", "TS"]
    left = candidate.sort_values(keys, kind="mergesort").reset_index(drop=True)
    right = reference.sort_values(keys, kind="mergesort").reset_index(drop=True)
    problems = []
    if "Status" in left and (left["Status"].astype(str) != "ok").any():
        problems.append(f"{what}: {int((left['Status'].astype(str) != 'ok').sum())} rows not ok")
    worst = None
    if len(left) != len(right):
        problems.append(f"{what}: {len(left)} rows, reference {len(right)}")
    else:
        for key in keys:
            if not (left[key].to_numpy() == right[key].to_numpy()).all():
                problems.append(f"{what}: rows differ in {key}")
        labels = int((left["IsAnomaly"].to_numpy() != right["IsAnomaly"].to_numpy()).sum())
        if labels:
            problems.append(f"{what}: {labels} labels differ")
        difference = np.abs(
            left["Score"].to_numpy(dtype="float64") - right["Score"].to_numpy(dtype="float64")
        )
        worst = float(np.max(difference, initial=0))
        if not worst <= SCORE_TOLERANCE:
            problems.append(f"{what}: decision values differ by up to {worst:g}")
        versions = (
            left["ModelVersion"].astype(str).to_numpy()
            != right["ModelVersion"].astype(str).to_numpy()
        )
        if versions.any():
            problems.append(f"{what}: {int(versions.sum())} model versions differ")
    anomalies = int(left["IsAnomaly"].fillna(0).sum()) if "IsAnomaly" in left else 0
    return {"rows": len(left), "anomalies": anomalies, "max_score_difference": worst,
            "problems": problems}  # fmt: skip


def sklearn_reference(extract: Path, store: Path) -> pd.DataFrame:
    """scikit-learn's own predictions of every pair (when the loop is not run)."""
    from scoring.data.extract_folder import list_partitions, read_partition
    from scoring.models.predictor import SensorPredictor
    from scoring.models.store import ModelStore

    predictor = SensorPredictor(ModelStore(store), fast=False)
    frames = [predictor.score(read_partition(p.files, p.keys)) for p in list_partitions(extract)]
    return pd.concat(frames, ignore_index=True)


def check_outputs(
    ctx: BenchContext, outputs: dict[str, pd.DataFrame], problems: list[str]
) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    expected = ctx.spec.sensors * ctx.spec.rows
    reference = outputs.get(LOOP)
    if reference is None and any(mode in outputs for mode in SCORE_MODES):
        reference = sklearn_reference(ctx.extract_dir("shard"), ctx.store_dir)
    for mode in SCORE_MODES:
        if mode in outputs:
            checks[mode] = compare_predictions(outputs[mode], reference, f"{mode} vs scikit-learn")
            problems.extend(checks[mode]["problems"])
            if len(outputs[mode]) != expected:
                problems.append(f"{mode}: {len(outputs[mode])} rows, expected {expected}")
    if PROCESS in outputs and reference is not None:
        sample = outputs[PROCESS][["Device", "Sensor"]].drop_duplicates()
        subset = reference.merge(sample, on=["Device", "Sensor"], how="inner")
        checks[PROCESS] = compare_predictions(outputs[PROCESS], subset, f"{PROCESS} vs loop")
        problems.extend(checks[PROCESS]["problems"])
    checks["problems"] = problems
    return checks
