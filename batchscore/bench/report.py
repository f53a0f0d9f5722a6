"""The results as a short text table, and the ratios to the baseline."""

from __future__ import annotations

from typing import Any

from batchscore.bench.modes import (
    FIT_LOOP,
    FIT_LOOP_DEFAULT,
    KERNEL,
    LOOP,
    PROCESS,
    SCORE_MODES,
    TRAIN,
    TRAIN_REFERENCE,
    TRAINING_TIMED,
)

#: each training run beside the loop that fits the same models, and ``train`` beside the
#: plain fit loop too (its models cost more to fit: the trimming fit and the calibration)
_TRAINING_RATIOS = (
    (TRAIN_REFERENCE, FIT_LOOP, "fit_loop"),
    (TRAIN, FIT_LOOP_DEFAULT, "fit_loop_default"),
    (TRAIN, FIT_LOOP, "fit_loop"),
)


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """How many times faster than the baseline (wall clock, and per core-second): scoring
    against the careful one-call loop, training against the loop fitting the same models (timed
    inside its process, and as a whole process: ``..._whole_process_wall``)."""
    ratios: dict[str, float] = {}
    pairs = [(mode, LOOP, "loop") for mode in (*SCORE_MODES, PROCESS)]
    for mode, baseline, name in [*pairs, *_TRAINING_RATIOS]:
        base = results.get(baseline)
        if base and mode in results:
            ratios[f"{mode}_vs_{name}_wall"] = base["seconds"] / results[mode]["seconds"]
            ratios[f"{mode}_vs_{name}_core_seconds"] = (
                base["cpu_seconds"] / results[mode]["cpu_seconds"]
            )
    for mode, baseline, name in _TRAINING_RATIOS:
        # The fit loop's clock leaves out its imports and its reading of the readings; ``train``
        # is timed from its interpreter's start. Both whole processes, the same way, beside it.
        base = results.get(baseline)
        if base and mode in results and base.get("fastest_process_seconds"):
            ratios[f"{mode}_vs_{name}_whole_process_wall"] = (
                base["fastest_process_seconds"] / results[mode]["seconds"]
            )
    return ratios


def _peak_mib(figures: dict[str, Any]) -> float:
    """The process tree's peak memory: PSS where known (shared pages counted once), else RSS."""
    pss = figures.get("peak_pss_mib")
    return figures["peak_rss_mib"] if pss is None else pss


def _work_filesystem(machine: dict[str, Any]) -> str:
    kind = machine.get("work_filesystem")
    return f"; work folder on {kind}" if kind else ""


def format_report(results: dict[str, Any]) -> str:
    """The figures as a short text table."""
    config = results["config"]
    lines = [
        f"fleet: {config['sensors']} pairs x {config['rows_per_sensor']} rows = "
        f"{config['rows']} rows scored; {config['workers']} workers; "
        f"load average at start {results['machine']['load_average_at_start'][0]:.2f}"
        + _work_filesystem(results["machine"]),
        f"prepare: trained and packed {config['sensors']} models in "
        f"{results['prepare']['train_and_pack_seconds']:.1f} s "
        f"(pack {results['prepare']['pack_bytes'] / 2**20:.1f} MiB)",
        f"{'mode':<18}{'seconds':>10}{'core-s':>10}{'rows/s':>14}{'core-ms/pair':>14}"
        f"{'peak MiB':>10}{'RSS sum':>10}",
    ]
    notes = {
        LOOP: " (baseline: one call a pair)",
        PROCESS: " (extrapolated)",
        FIT_LOOP: " (baseline of train-reference: plain fit a pair)",
        TRAIN_REFERENCE: " (train --nu --gamma: the same models, saved)",
        FIT_LOOP_DEFAULT: " (baseline of train: the default model a pair, scikit-learn's API)",
        TRAIN: " (the default model; rows/s: rows trained on)",
    }
    for mode in (LOOP, *SCORE_MODES, PROCESS, *TRAINING_TIMED):
        if mode in results:
            r = results[mode]
            note = notes.get(mode, "")
            lines.append(
                f"{mode:<18}{r['seconds']:>10.2f}{r['cpu_seconds']:>10.2f}"
                f"{r['rows_per_second']:>14,.0f}{r['core_ms_per_pair']:>14.3f}"
                f"{_peak_mib(r):>10.0f}{r['peak_rss_mib']:>10.0f}{note}"
            )
    lines.append(
        "  peak MiB: the process tree's summed proportional set size (a page the workers "
        "share, like the mapped model pack, counted once); RSS sum counts it in every process"
    )
    if KERNEL in results:
        k = results[KERNEL]
        lines.append(
            f"fleet kernel, 1 core: {k['rows']:,} rows of {k['pairs']:,} pairs in "
            f"{k['seconds'] * 1e3:.1f} ms = {k['rows_per_second'] / 1e6:.1f} M rows/s"
        )
    if LOOP in results:
        lines.append(
            f"  (the loop on values in memory, decision_function and predict a pair, no file "
            f"read or written: {results[LOOP]['two_call_seconds']:.2f} s)"
        )
    for name, value in results.get("ratios", {}).items():
        lines.append(f"  {name.replace('_', ' ')}: {value:.2f}x")
    problems = results["correctness"]["problems"]
    if problems:
        lines.append("CORRECTNESS FAILED: " + "; ".join(problems))
    else:
        lines.append("correctness: labels identical to scikit-learn's, scores within 1e-9")
    return "\n".join(lines)
