"""The promote step: the training step's candidates through the gate into a new generation.

``python -m scoring.steps.promote --candidates DIR --models DIR [--keep N] [gate bounds]``

Reads every part the training step wrote (:mod:`scoring.steps.train`): a small model store and
``metrics.jsonl`` per mini-batch. Each candidate file is read back (sha256 against its part's
manifest), rebuilt under the store's allow-list and probe-checked; then the gate
(:mod:`scoring.models.promotion`) decides per pair. Promoted and added models, with every
other pair's current model, become the store's next generation, which becomes current
(:mod:`scoring.models.generations`; nothing is switched when no candidate passed).

Every decision, promoted or not and why, goes into the training summary: ``summary.json``
beside the generation (and into ``--summary-out``), and one ``TrainingRunSummary`` event to
Application Insights (:mod:`scoring.telemetry`). Outcomes (``status``): ``succeeded``;
``too_many_rejections`` (more than ``--max-rejected-percent`` of the trained pairs rejected or
failed: what passed is still promoted, and the alert fires); ``nothing_to_train`` (no pair
in the window); ``failed`` (exit 1: pairs were there and no candidate came out of training).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scoring.data.files import require_output_folder, write_json
from scoring.errors import RunFailed, UsageError
from scoring.models.generations import DEFAULT_KEEP, GenerationError, Generations
from scoring.models.promotion import (
    ADDED,
    FAILED,
    PROMOTED,
    REJECTED,
    Decision,
    GateRules,
    decide,
    failed,
    probe_problem,
)
from scoring.models.store import MANIFEST_NAME, ModelStore, ModelStoreError
from scoring.steps.train import METRICS_FILE, PARTS_FOLDER, TRAINED

log = logging.getLogger("scoring.steps.promote")

SUMMARY_FILE = "summary.json"
SUCCEEDED, TOO_MANY_REJECTIONS = "succeeded", "too_many_rejections"
NOTHING_TO_TRAIN, FAILED_RUN = "nothing_to_train", "failed"
DEFAULT_MAX_REJECTED_PERCENT = 20


def _judge(part: ModelStore, metrics: dict[str, Any], rules: GateRules) -> tuple[Decision, Any]:
    """The decision for one metrics line, and (entry, bytes) of a candidate that passed."""
    device, sensor = str(metrics["device"]), str(metrics["sensor"])
    if metrics.get("status") != TRAINED:
        error = str(metrics.get("error") or "no candidate")
        return failed(device, sensor, error, metrics.get("current_version")), None
    try:
        entry, _path, data = part.read_model_bytes(device, sensor)
        pipeline = part.load(device, sensor).pipeline
        problem = probe_problem(pipeline, entry)
    except ModelStoreError as exc:
        entry, data, problem = part.entry(device, sensor), None, f"the file does not load ({exc})"
    decision = decide(
        metrics, rules, probe_failure=problem, candidate_version=str(entry.get("version"))
    )
    return decision, (entry, data) if decision.outcome in (PROMOTED, ADDED) else None


def promote(
    candidates: Path,
    models: Path,
    rules: GateRules,
    *,
    keep: int = DEFAULT_KEEP,
    max_rejected_percent: float = DEFAULT_MAX_REJECTED_PERCENT,
) -> dict[str, Any]:
    """Judge every candidate, commit the next generation; returns the training summary."""
    generations = Generations.local(models, keep=keep)
    current_generation = generations.current()
    if current_generation is not None:
        base = generations.manifest_of(current_generation)
    elif (models / MANIFEST_NAME).is_file():
        store = ModelStore(models)
        base = {pair: store.entry(*pair) for pair in store.keys()}
    else:
        base = {}
    decisions: list[Decision] = []
    entries = dict(base)
    new_files: list[tuple[str, bytes]] = []
    for part_dir in sorted((candidates / PARTS_FOLDER).glob("*")):
        if not part_dir.is_dir() or part_dir.name.startswith("."):
            continue
        part = ModelStore(part_dir)
        for line in (part_dir / METRICS_FILE).read_text(encoding="utf-8").splitlines():
            decision, passed = _judge(part, json.loads(line), rules)
            decisions.append(decision)
            if passed is not None:
                entry, data = passed
                entries[(decision.device, decision.sensor)] = entry
                new_files.append((str(entry["file"]), data))
    counts = {
        outcome: sum(d.outcome == outcome for d in decisions)
        for outcome in (PROMOTED, ADDED, REJECTED, FAILED)
    }
    retrained = {(d.device, d.sensor) for d in decisions}
    counts["kept"] = sum(pair not in retrained for pair in base)
    trained = len(decisions)
    refused = counts[REJECTED] + counts[FAILED]
    summary: dict[str, Any] = {
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "previous_generation": current_generation,
        "generation": None,
        "pairs_trained": trained,
        **counts,
        "rejected_percent": round(100.0 * refused / trained, 2) if trained else 0.0,
        "rules": asdict(rules),
        "max_rejected_percent": max_rejected_percent,
        "run_id": os.environ.get("AZUREML_RUN_ID") or None,
        "status": SUCCEEDED,
        "failure": None,
    }
    if not trained:
        summary["status"] = NOTHING_TO_TRAIN
    elif not (counts[PROMOTED] + counts[ADDED] + counts[REJECTED]):
        summary["status"] = FAILED_RUN
        summary["failure"] = f"training failed for all {trained} pairs"
    elif summary["rejected_percent"] > max_rejected_percent:
        summary["status"] = TOO_MANY_REJECTIONS
    summary["decisions"] = [asdict(d) for d in decisions]
    if new_files:
        generation = generations.commit(
            entries,
            new_files,
            summary=summary,
            counts={k: counts[k] for k in ("promoted", "added", "rejected", "kept")},
        )
        summary["generation"] = generation.generation
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rules = GateRules()
    parser.add_argument("--candidates", required=True, type=Path, help="the train step's output")
    parser.add_argument(
        "--models", required=True, type=Path, help="the model store (its generations)"
    )
    parser.add_argument(
        "--keep",
        type=int,
        default=DEFAULT_KEEP,
        help="generations to keep (default %(default)s)",
    )
    parser.add_argument(
        "--min-rows",
        type=int,
        default=rules.min_rows,
        help="gate: training rows a candidate needs (default %(default)s)",
    )
    parser.add_argument(
        "--max-flag-rate-delta-percent",
        type=float,
        default=100 * rules.max_flag_rate_delta,
        help="gate: allowed difference of flag rates on the held-out rows, in percentage "
        "points (default %(default)s)",
    )
    parser.add_argument(
        "--max-rejected-percent",
        type=float,
        default=DEFAULT_MAX_REJECTED_PERCENT,
        help="above this share of rejected or failed pairs the run says too_many_rejections "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--summary-out", type=Path, help="also write the training summary.json into this folder"
    )


def run(args: argparse.Namespace) -> int:
    from scoring.telemetry import emit_training_summary

    if not (args.candidates / PARTS_FOLDER).is_dir():
        raise UsageError(f"--candidates {args.candidates}: no {PARTS_FOLDER}/ (not a train output)")
    require_output_folder("--models", args.models)
    if args.summary_out is not None:
        require_output_folder("--summary-out", args.summary_out)
    try:
        rules = GateRules(args.min_rows, args.max_flag_rate_delta_percent / 100.0)
    except ValueError as exc:
        raise UsageError(f"gate: {exc}") from None
    if args.keep < 1:
        raise UsageError(f"--keep {args.keep}: must be at least 1")
    args.models.mkdir(parents=True, exist_ok=True)
    try:
        summary = promote(
            args.candidates,
            args.models,
            rules,
            keep=args.keep,
            max_rejected_percent=args.max_rejected_percent,
        )
    except GenerationError as exc:
        raise RunFailed(str(exc)) from None
    if args.summary_out is not None:
        write_json(summary, args.summary_out / SUMMARY_FILE)
    emit_training_summary(summary)  # never raises
    brief = {k: v for k, v in summary.items() if k != "decisions"}
    if summary["status"] == FAILED_RUN:
        raise RunFailed(f"training failed: {summary['failure']}; summary: {json.dumps(brief)}")
    log.info("training summary: %s", json.dumps(brief, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    from scoring.steps import run_step

    return run_step("python -m scoring.steps.promote", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
