"""The run history: the summaries the publish step writes, one per scored window.

Every run leaves ``window=<end as YYYYMMDDTHHMMSSZ>/summary.json`` beside its predictions
(:mod:`scoring.steps.publish`): on Azure under the predictions root of the ``predictions``
container, locally wherever ``batchscore publish --out`` (or the demo) put it. This module
reads them from a folder (:func:`read_folder`; the container is read by
:mod:`batchscore.cloud.run_summaries`) and shows them as a table (:func:`table_text`) or one
run in full (:func:`run_text`). A summary that cannot be read is reported by name, never
silently skipped; the others are still shown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scoring.errors import RunFailed, UsageError
from scoring.steps.publish import SUMMARY_FILE, PublishSummary, window_folder

#: a run's folder under the predictions root
WINDOW_FOLDER = re.compile(r"^window=\d{8}T\d{6}Z$")


class RunHistoryError(UsageError):
    """No run summary where the user pointed, or no run for the window asked for."""


@dataclass(frozen=True)
class Run:
    """One run's summary and where it was read."""

    source: str
    summary: PublishSummary

    @property
    def window_end(self) -> pd.Timestamp:
        return _utc(self.summary.window_end)


@dataclass
class History:
    """The runs found (sorted by window end) and the summaries that could not be read."""

    runs: list[Run] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    #: window folder -> why its summary cannot be shown (missing, unreadable, not a summary)
    unreadable_windows: dict[str, str] = field(default_factory=dict)

    def add(self, source: str, text: str | bytes, window: str | None = None) -> None:
        """Parse one ``summary.json`` (of the folder ``window``); a bad one is remembered with
        the reason."""
        try:
            values = json.loads(text)
            if not isinstance(values, dict):
                raise ValueError("not a JSON object")
            summary = PublishSummary.from_dict(values)
            _utc(summary.window_end)
        except (ValueError, TypeError) as exc:
            self.problem(f"{source}: not a run summary ({exc})", window)
            return
        self.runs.append(Run(source, summary))

    def problem(self, text: str, window: str | None = None) -> None:
        """A summary that cannot be shown, named (with its window folder, when known)."""
        self.unreadable.append(text)
        if window is not None:
            self.unreadable_windows[window] = text

    def missing(self, folder: str, window: str) -> None:
        """A window folder without its summary (its publish step did not finish)."""
        self.problem(
            f"{folder}: no {SUMMARY_FILE} (the window's publish step did not finish, or its "
            "summary was removed)",
            window,
        )

    def sorted(self) -> History:
        return History(
            sorted(self.runs, key=lambda r: r.window_end),
            list(self.unreadable),
            dict(self.unreadable_windows),
        )

    def last(self, count: int | None) -> History:
        runs = self.runs[-count:] if count else self.runs
        return History(list(runs), list(self.unreadable), dict(self.unreadable_windows))

    def find(self, window: str) -> Run:
        """The run of a window, named as its folder (``window=20240101T010000Z``) or by any
        ISO 8601 time of its end; the latest summary wins if a window ran twice. A window whose
        summary is missing or unreadable says so (exit 1), not "no run"."""
        wanted = window_key(window)
        found = [r for r in self.runs if r.summary.window == wanted]
        if not found and wanted in self.unreadable_windows:
            raise RunFailed(f"{wanted}: {self.unreadable_windows[wanted]}")
        if not found:
            known = ", ".join(r.summary.window for r in self.runs[-5:]) or "none"
            raise RunHistoryError(f"no run for {wanted}; the latest windows: {known}")
        return found[-1]


def window_key(window: str) -> str:
    """A window as its folder name: given so (``window=20240101T010000Z``) or as any ISO 8601
    time of its end; anything else raises :class:`UsageError` naming it."""
    return window if WINDOW_FOLDER.match(window) else window_folder(window)


def read_folder(root: Path) -> History:
    """Every ``window=*/summary.json`` under ``root`` (or ``root`` itself as a window folder)."""
    if not root.is_dir():
        raise RunHistoryError(f"--predictions {root}: no such folder")
    folders = (
        [root]
        if WINDOW_FOLDER.match(root.name)
        else sorted(p for p in root.glob("window=*") if WINDOW_FOLDER.match(p.name))
    )
    history = History()
    for folder in folders:
        path = folder / SUMMARY_FILE
        if not path.exists():
            history.missing(str(folder), folder.name)
            continue
        try:
            history.add(str(path), path.read_bytes(), folder.name)
        except OSError as exc:
            history.problem(f"{path}: cannot be read ({exc})", folder.name)
    if not history.runs and not history.unreadable:
        raise RunHistoryError(
            f"--predictions {root}: no window=<end>/{SUMMARY_FILE} here; run summaries are "
            "written by the publish step (`batchscore publish --out DIR`, the demo, or the "
            "pipeline on Azure)"
        )
    return history.sorted()


def table_text(history: History) -> str:
    """One line per run: window end, status, rows, anomalies, failures."""
    header = (
        "WINDOW END (UTC)      STATUS        ROWS IN  PUBLISHED  ANOMALIES  PAIRS  "
        "PAIRS FAILED  FAILED BATCHES  MODEL VERSION"
    )
    lines = [header]
    for run in history.runs:
        s = run.summary
        lines.append(
            f"{run.window_end:%Y-%m-%d %H:%M:%S}   {s.status:<12}  {s.rows_extracted:>7}  "
            f"{s.rows_published:>9}  {s.anomalies:>9}  {s.pairs:>5}  {s.pairs_failed:>12}  "
            f"{len(s.failed_mini_batches):>14}  {s.model_version or '-'}"
        )
    lines.append(_totals(history))
    return "\n".join(lines)


def run_text(run: Run) -> str:
    """One run in full: counts, per-status rows, failed pairs and mini-batches, timings."""
    s = run.summary
    lines = [
        f"run of {s.window}  ({s.window_start}, {s.window_end}]",
        f"  status              {s.status}" + (f": {s.failure}" if s.failure else ""),
        f"  rows                {s.rows_extracted} extracted, {s.rows_published} published, "
        f"{s.rows_missing} missing, {s.duplicates_dropped} duplicates dropped",
        f"  rows by status      {_pairs_text(s.rows_by_status) or '-'}",
        f"  anomalies           {s.anomalies}",
        f"  pairs               {s.pairs} in the window, {s.pairs_scored} scored, "
        f"{s.pairs_failed} failed",
        f"  model version       {s.model_version or '-'} ({s.model_versions} distinct)",
        f"  drift               {_drift_text(s)}",
        f"  run id              {s.run_id or '-'}",
        f"  timings             {_pairs_text(s.timings) or '-'}",
        f"  summary             {run.source}",
    ]
    if s.failed_pairs:
        shown = len(s.failed_pairs)
        more = f" (first {shown} of {s.pairs_failed})" if s.pairs_failed > shown else ""
        lines.append(f"  failed pairs{more}:")
        lines += [f"    {p['device']} / {p['sensor']}: {p['reason']}" for p in s.failed_pairs]
    if s.drift_worst:
        lines.append(f"  most drifted pairs ({s.drift_statistic}, worst first):")
        lines += [
            f"    {p.get('device')} / {p.get('sensor')}: {p.get(s.drift_statistic or '')} "
            f"(threshold {p.get('threshold')}, {p.get('rows')} rows)"
            for p in s.drift_worst
        ]
    if s.failed_mini_batches:
        lines.append("  failed mini-batches:")
        for batch in s.failed_mini_batches:
            label = batch.get("label") or batch.get("keys") or "?"
            lines.append(f"    {label}: {batch.get('reason', 'no reason recorded')}")
    if s.pairs_not_extracted:
        lines.append("  pairs not extracted:")
        lines += [
            f"    {p.get('device')} / {p.get('sensor')}: {p.get('reason')}"
            for p in s.pairs_not_extracted
        ]
    return "\n".join(lines)


def _drift_text(s: PublishSummary) -> str:
    """The run's drift in one line: counted, not computed, or why it could not be."""
    if s.drift_failure:
        return f"not computed: {s.drift_failure}"
    if s.drifted_pairs is None:
        return "not computed (published without the model store)"
    unknown = f", {s.drift_unknown_pairs} unknown" if s.drift_unknown_pairs else ""
    return (
        f"{s.drifted_pairs} of {s.drift_pairs} pairs drifted from their models' baselines "
        f"({s.drift_statistic}{unknown}; drift.parquet beside the predictions has every pair)"
    )


def _totals(history: History) -> str:
    runs = [r.summary for r in history.runs]
    by_status = pd.Series([s.status for s in runs], dtype="object").value_counts()
    statuses = ", ".join(f"{status} {count}" for status, count in by_status.items())
    count = f"{len(runs)} run" + ("" if len(runs) == 1 else "s")
    unshown = len(history.unreadable)
    unshown_text = f"; {unshown} window(s) without a readable summary" if unshown else ""
    return (
        f"{count} ({statuses or 'none'}); {sum(s.anomalies for s in runs)} anomalies" + unshown_text
    )


def _pairs_text(values: dict[str, object]) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items() if value is not None)


def _utc(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    if pd.isna(stamp):
        raise ValueError(f"window_end {text!r} is not a time")
    return stamp.tz_localize(None) if stamp.tzinfo is None else stamp.tz_convert(None)
