"""``demo``: every stage on a small simulated fleet, then a report against the ground truth.

Stages (each is the real command, run in-process through ``batchscore.cli.main``):

1. ``simulate``  10 devices x 4 sensors x 48 h of 1-minute readings -> ``readings.parquet``
2. ``aggregate`` 5-minute tumbling windows -> ``sensors.db`` (SQLite)
3. ``train``     one model per pair on the windows *before* the scoring period
                 (the first 36 h) -> ``models/``
4. ``extract``   the scoring period (the last 12 h) -> ``extract/`` (MLTable + partitions)
5. ``score``     the entry script under the local parallel runner -> ``predictions/``
                 (and one Parquet part per mini-batch -> ``scored/``, as on Azure ML)
6. ``publish``   the parts into ``runs/window=<end>/``: the predictions, each pair's drift
                 against its model's baseline and the run's summary, as the pipeline's
                 publish step writes them (``batchscore runs list``)

Then it compares the predictions with the injected anomalies. Ground truth per
window: a window (TS - W, TS] is *truly anomalous* when at least one raw reading
in it was injected as an anomaly (``InjectedAnomaly == 1``); the same mapping
aggregate uses, so each prediction row has exactly one truth value. Precision is
TP / flagged windows, recall TP / truly anomalous windows. The report (text on
stdout, ``report.json``) holds rows scored, anomalies found, precision, recall,
recall per anomaly kind, where the false positives come from (and what to do about them),
the drift the publish stage found and the time of every stage; ``anomalies.png`` charts the
pairs the model flagged most (true and false flags) and one clean pair beside them, the
injected anomalies, the training range and the values each pair's model flags marked, the
legend above the panels, with a caption.

Everything lands in ``--workdir`` (default ``.batchscore/demo`` in the current folder); a
re-run replaces the previous results.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batchscore.aggregate import window_end
from batchscore.simulate import SimulationConfig
from scoring.data.files import read_table, write_json
from scoring.data.schema import (
    ANOMALY_KIND,
    DEVICE,
    INJECTED_ANOMALY,
    IS_ANOMALY,
    PREDICTION_COLUMNS,
    SENSOR,
    TS,
    VALUE,
    normalize_readings,
)
from scoring.errors import RunFailed
from scoring.work_folder import DEMO_FOLDER

log = logging.getLogger(__name__)

DEFAULT_WORKDIR = DEMO_FOLDER
TRUE_ANOMALY = "TrueAnomaly"
KIND_ORDER = ("stuck", "spike", "dip")


@dataclass(frozen=True)
class DemoConfig:
    devices: int = 10
    sensors: int = 4
    hours: int = 48
    interval_seconds: int = 60
    window_minutes: int = 5
    score_hours: int = 12
    anomaly_rate: float = 0.01
    seed: int = 42
    workers: int = max(1, min(2, os.cpu_count() or 1))
    chart_sensors: int = 4
    #: the first reading's time; None: recent whole days ending by today's midnight (UTC), so
    #: the scored window is recent and its summary's latency means what it says
    start: pd.Timestamp | None = None

    def start_time(self) -> pd.Timestamp:
        if self.start is not None:
            return self.start
        today = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("D")
        return today - pd.Timedelta(days=-(-self.hours // 24))

    def simulation(self) -> SimulationConfig:
        """What the simulate stage generates."""
        return SimulationConfig(
            devices=self.devices,
            sensors=self.sensors,
            hours=self.hours,
            interval_seconds=self.interval_seconds,
            anomaly_rate=self.anomaly_rate,
            seed=self.seed,
            start=self.start_time(),
        )


def batchscore_command() -> str:
    """``batchscore`` as the shell that started this process can run it: the command's own
    path as it was typed (``make demo`` runs ``.venv-demo/bin/batchscore``, which is on no
    PATH), or this interpreter with ``-m batchscore``."""
    script = sys.argv[0] if sys.argv else ""
    if Path(script).name == "batchscore" and Path(script).is_file():
        return shlex.quote(script)
    return f"{shlex.quote(sys.executable)} -m batchscore"


@dataclass
class DemoReport:
    rows_in: int = 0
    rows_scored: int = 0
    anomalies_found: int = 0
    truly_anomalous_windows: int = 0
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    precision: float = 0.0
    recall: float = 0.0
    recall_by_kind: dict[str, float] = field(default_factory=dict)
    scoring_window: list[str] = field(default_factory=list)
    false_positives_by_place: dict[str, int] = field(default_factory=dict)
    most_flagged_pairs: list[dict[str, object]] = field(default_factory=list)
    clean_pair: dict[str, object] | None = None
    drift: dict[str, object] = field(default_factory=dict)
    false_positive_explanation: str = ""
    chart_caption: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        kinds = ", ".join(f"{k} {v:.0%}" for k, v in self.recall_by_kind.items()) or "n/a"
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.stage_seconds.items())
        return "\n".join(
            [
                "demo report",
                f"  scoring window   ({self.scoring_window[0]}, {self.scoring_window[1]}]",
                f"  rows scored      {self.rows_scored} of {self.rows_in}",
                f"  anomalies found  {self.anomalies_found} "
                f"(truly anomalous windows: {self.truly_anomalous_windows})",
                f"  precision        {self.precision:.3f} "
                f"({self.true_positives} of {self.true_positives + self.false_positives} flagged)",
                f"  recall           {self.recall:.3f} ({self.true_positives} of "
                f"{self.truly_anomalous_windows} found; by kind: {kinds})",
                f"  drift            {self._drift_text()}",
                f"  time             {stages}",
                f"  report           {self.files.get('report', '')}",
                f"  chart            {self.files.get('chart', '')}",
                f"  run history      {batchscore_command()} runs list --predictions "
                f"{self.files.get('runs', '')}",
                "",
                textwrap.fill(f"Chart: {self.chart_caption}", width=92, subsequent_indent="  "),
                "",
                textwrap.fill(
                    f"Why false positives: {self.false_positive_explanation}",
                    width=92,
                    subsequent_indent="  ",
                ),
            ]
        )

    def _drift_text(self) -> str:
        drift = self.drift
        if drift.get("drifted_pairs") is None:
            return "not computed"
        worst = ", ".join(f"{p['device']}/{p['sensor']}" for p in drift.get("worst", [])[:3])
        return (
            f"{drift['drifted_pairs']} of {drift['pairs']} pairs drifted from their models' "
            f"baselines ({drift['statistic']} over the scored window"
            + (f"; worst {worst})" if worst else ")")
        )


class DemoStageError(RunFailed):
    """A stage's command failed; the demo exits with that command's exit code."""

    def __init__(self, stage: str, code: int, argv: list[str]) -> None:
        super().__init__(
            f"demo stage {stage} failed (exit code {code}): batchscore {' '.join(argv)}"
        )
        self.exit_code = code


def _stage(name: str, argv: list[str], timings: dict[str, float]) -> None:
    from batchscore.cli import main

    log.info("demo stage %s: batchscore %s", name, " ".join(argv))
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level = "WARNING"
    started = time.perf_counter()
    code = main(["--log-level", level, *argv])
    timings[name] = round(time.perf_counter() - started, 2)
    if code != 0:
        raise DemoStageError(name, code, argv)


def window_truth(raw: pd.DataFrame, window_minutes: int) -> pd.DataFrame:
    """Per (Device, Sensor, window end): whether any injected anomaly fell in it, and its kind.

    A window touched by several kinds is counted under the first in :data:`KIND_ORDER`.
    """
    no_kind = len(KIND_ORDER)
    rank = raw[ANOMALY_KIND].map({kind: i for i, kind in enumerate(KIND_ORDER)})
    rank = rank.where(raw[INJECTED_ANOMALY] == 1).fillna(no_kind).astype(int)
    keyed = pd.DataFrame(
        {
            TS: window_end(raw[TS], window_minutes),
            DEVICE: raw[DEVICE],
            SENSOR: raw[SENSOR],
            TRUE_ANOMALY: raw[INJECTED_ANOMALY].astype(int),
            "rank": rank,
        }
    )
    truth = keyed.groupby([DEVICE, SENSOR, TS], sort=False).agg(
        **{TRUE_ANOMALY: (TRUE_ANOMALY, "max"), "rank": ("rank", "min")}
    )
    kinds = pd.Series([*KIND_ORDER, None], dtype=object)
    truth[ANOMALY_KIND] = kinds.iloc[truth["rank"].to_numpy()].to_numpy()
    return truth.drop(columns="rank").reset_index()


def evaluate(predictions: pd.DataFrame, truth: pd.DataFrame, report: DemoReport) -> pd.DataFrame:
    """Join predictions with the window truth; fill the confusion counts into ``report``."""
    joined = predictions.merge(truth, on=[TS, DEVICE, SENSOR], how="left", validate="many_to_one")
    joined[TRUE_ANOMALY] = joined[TRUE_ANOMALY].fillna(0).astype(int)
    flagged = joined[IS_ANOMALY] == 1
    actual = joined[TRUE_ANOMALY] == 1
    report.rows_scored = len(joined)
    report.anomalies_found = int(flagged.sum())
    report.truly_anomalous_windows = int(actual.sum())
    report.true_positives = int((flagged & actual).sum())
    report.false_positives = int((flagged & ~actual).sum())
    report.false_negatives = int((~flagged & actual).sum())
    report.precision = round(report.true_positives / max(1, report.anomalies_found), 4)
    report.recall = round(report.true_positives / max(1, report.truly_anomalous_windows), 4)
    for kind in KIND_ORDER:
        of_kind = actual & (joined[ANOMALY_KIND] == kind)
        if of_kind.any():
            report.recall_by_kind[kind] = round(float((flagged & of_kind).sum() / of_kind.sum()), 4)
    return joined


def most_flagged(joined: pd.DataFrame, pairs: int) -> list[dict[str, object]]:
    """The pairs the model flagged most (true and false flags together), most first."""
    flagged = joined[IS_ANOMALY] == 1
    actual = joined[TRUE_ANOMALY] == 1
    counts = (
        joined.assign(flagged=flagged, true_flags=flagged & actual, injected=actual)
        .groupby([DEVICE, SENSOR])[["flagged", "true_flags", "injected"]]
        .sum()
        .sort_values(["flagged", "injected"], ascending=False, kind="mergesort")
    )
    return [
        {
            "device": d,
            "sensor": s,
            "flagged": int(r["flagged"]),
            "true": int(r["true_flags"]),
            "false": int(r["flagged"] - r["true_flags"]),
            "injected": int(r["injected"]),
        }  # fmt: skip
        for (d, s), r in counts.head(pairs).iterrows()
    ]


def explain_false_positives(
    joined: pd.DataFrame, training: pd.DataFrame, report: DemoReport
) -> None:
    """Where the false positives sit against each pair's training windows, in words.

    Each model learns where its pair's 5-minute averages dwelt during training. A flag on a
    normal window is a value the training windows rarely held: beyond their range (drift), in
    their outer tenth on either side, or in between (where a daily cycle only passes quickly).
    """
    false_flags = joined[(joined[IS_ANOMALY] == 1) & (joined[TRUE_ANOMALY] == 0)]
    trained = {key: np.sort(g[VALUE].to_numpy()) for key, g in training.groupby([DEVICE, SENSOR])}
    places = {"beyond the training range": 0, "in its outer tenth": 0, "inside it": 0}
    for device, sensor, value in zip(
        false_flags[DEVICE], false_flags[SENSOR], false_flags[VALUE], strict=True
    ):
        seen = trained.get((device, sensor))
        share = np.searchsorted(seen, value) / len(seen) if seen is not None else 0.0
        if share <= 0.0 or share >= 1.0:
            places["beyond the training range"] += 1
        elif share < 0.1 or share > 0.9:
            places["in its outer tenth"] += 1
        else:
            places["inside it"] += 1
    report.false_positives_by_place = places
    top = report.most_flagged_pairs[:3]
    from_top = sum(int(p["false"]) for p in top)
    total = max(1, report.false_positives)
    named = ", ".join(f"{p['device']}/{p['sensor']} ({p['false']})" for p in top)
    report.false_positive_explanation = (
        f"{report.false_positives} normal windows were flagged; {from_top} of them "
        f"({from_top / total:.0%}) come from three pairs: {named}. Each model learns where "
        "its pair's 5-minute averages dwelt in the training windows, so it flags values they "
        f"rarely held: {places['beyond the training range']} false flags lie beyond the "
        f"training range (drift), {places['in its outer tenth']} in its outer tenth, "
        f"{places['inside it']} inside it, where a daily cycle only passed quickly or the "
        "pair has drifted since. What to do: retrain on recent windows more often (a rolling "
        "training window follows drift), train on more days so every hour of the cycle is "
        "well covered, lower --gamma for a smoother boundary (fewer false flags, some "
        "anomalies missed: measure it with this demo), or act on runs of consecutive flags "
        "instead of single windows."
    )


def clean_pair(joined: pd.DataFrame, skip: list[dict[str, object]]) -> dict[str, object] | None:
    """A pair to show beside the worst ones: no injected anomaly and no flag in the scored
    window if there is one (else the fewest of both), not one of ``skip``."""
    shown = {(p["device"], p["sensor"]) for p in skip}
    counts = (
        joined.assign(flagged=joined[IS_ANOMALY] == 1, injected=joined[TRUE_ANOMALY] == 1)
        .groupby([DEVICE, SENSOR])[["flagged", "injected"]]
        .sum()
    )
    counts = counts[[key not in shown for key in counts.index]]
    if counts.empty:
        return None
    order = (counts["flagged"] + counts["injected"]).sort_values(kind="mergesort")
    device, sensor = order.index[0]
    flagged, injected = (int(v) for v in counts.loc[(device, sensor)])
    true = int(((joined[DEVICE] == device) & (joined[SENSOR] == sensor)
                & (joined[IS_ANOMALY] == 1) & (joined[TRUE_ANOMALY] == 1)).sum())  # fmt: skip
    return {"device": device, "sensor": sensor, "flagged": flagged, "true": true,
            "false": flagged - true, "injected": injected, "clean": True}  # fmt: skip


def _flagged_stretches(models: Path | None, device: str, sensor: str, low: float, high: float):
    """The value ranges in [low, high] the pair's model flags, as (start, end) pairs: read
    from the model itself (its decision function on a fine grid)."""
    if models is None:
        return []
    from scoring.models.store import ModelStore, ModelStoreError

    try:
        model = ModelStore(models).load(device, sensor).pipeline
    except ModelStoreError as exc:
        log.warning("chart: %s", exc)
        return []
    grid = np.linspace(low, high, 600)
    flagged = model.decision_function(grid.reshape(-1, 1)) < 0
    edges = np.flatnonzero(np.diff(np.r_[False, flagged, False].astype(int)))
    step = (high - low) / (len(grid) - 1)
    pairs = zip(edges[::2], edges[1::2], strict=True)
    return [(grid[a] - step / 2, grid[b - 1] + step / 2) for a, b in pairs]


def draw_chart(
    joined: pd.DataFrame,
    training: pd.DataFrame,
    report: DemoReport,
    path: Path,
    models: Path | None = None,
) -> Path:
    """Write :func:`chart_figure` to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = chart_figure(joined, training, report, models)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def chart_figure(
    joined: pd.DataFrame,
    training: pd.DataFrame,
    report: DemoReport,
    models: Path | None = None,
) -> Any:
    """Value over time of the pairs the model flagged most and of one clean pair, with their
    flags, the injected anomalies, the middle 80% of their training windows and the values
    each pair's model flags; axes in units, a legend above the panels, with a caption. The
    caller closes the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = list(report.most_flagged_pairs)
    if report.clean_pair:
        chosen.append(report.clean_pair)
    fig, axes = plt.subplots(len(chosen), 1, figsize=(11, 2.6 * len(chosen) + 1.6), squeeze=False)
    for ax, pair_info in zip(axes[:, 0], chosen, strict=True):
        device, sensor = pair_info["device"], pair_info["sensor"]
        pair = joined[(joined[DEVICE] == device) & (joined[SENSOR] == sensor)].sort_values(TS)
        seen = training.loc[(training[DEVICE] == device) & (training[SENSOR] == sensor), VALUE]
        low, high = seen.quantile(0.1), seen.quantile(0.9)
        ax.axhspan(low, high, color="lightgrey", alpha=0.6, label="middle 80% of training")
        ax.plot(pair[TS], pair[VALUE], color="steelblue", linewidth=1, label="5-min average")
        truth = pair[pair[TRUE_ANOMALY] == 1]
        ax.scatter(truth[TS], truth[VALUE], s=80, facecolors="none", edgecolors="black",
                   label="injected anomaly")  # fmt: skip
        flagged = pair[pair[IS_ANOMALY] == 1]
        ax.scatter(flagged[TS], flagged[VALUE], s=22, color="crimson", marker="x",
                   label="flagged by the model")  # fmt: skip
        bottom, top = ax.get_ylim()
        for number, (start, end) in enumerate(_flagged_stretches(models, device, sensor,
                                                                 bottom, top)):  # fmt: skip
            ax.axhspan(start, end, color="mistyrose", alpha=0.7, zorder=0,
                       label="values the model flags" if number == 0 else None)  # fmt: skip
        ax.set_ylim(bottom, top)
        inside = flagged[(flagged[VALUE] >= low) & (flagged[VALUE] <= high)]
        what = "a clean pair, for comparison: " if pair_info.get("clean") else ""
        title = (
            f"{what}{device} / {sensor}: {pair_info['flagged']} of {len(pair)} windows flagged "
            f"({pair_info['true']} true, {pair_info['false']} false; "
            f"{pair_info['injected']} with injected anomalies)"
        )
        if len(inside):  # in the title, above the panel: a note never covers data either
            title += (
                f"\n{len(inside)} flag(s) inside the grey band: its model flags the pink "
                "stretches, values its training rarely held (a quick pass of the cycle, or drift)"
            )
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel(f"{sensor}\n(5-min average, sensor units)", fontsize=8)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("window end (UTC)", fontsize=8)
    handles, labels = {}, []
    for ax in axes[:, 0]:  # every kind of mark once, whichever panel has it
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    # Above the panels, outside every axes: a legend never covers data.
    fig.legend([handles[label] for label in labels], labels, loc="upper center", ncol=5,
               fontsize=7, frameon=False, bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    worst = len(report.most_flagged_pairs)
    report.chart_caption = (
        f"The {worst} pairs the model flagged most in the scored "
        f"{report.scoring_window[0]} .. {report.scoring_window[1]} (true and false flags "
        "together, so the worst false-positive sources are shown, not only the clean cases)"
        + (", and below them a clean pair for comparison" if report.clean_pair else "")
        + ". Red x: a window the model flagged; black circle: a window holding an injected "
        "anomaly; grey band: the middle 80% of that pair's training windows; pink: the values "
        "that pair's model flags (read from the model), so a flag inside the grey band shows "
        "where the model's normal region has a gap."
    )
    fig.text(0.01, 0.005, textwrap.fill(report.chart_caption, 170), fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig


def run_demo(config: DemoConfig, workdir: Path) -> DemoReport:
    """Run every stage into ``workdir`` and return the report (also written as JSON)."""
    workdir.mkdir(parents=True, exist_ok=True)
    raw_file = workdir / "readings.parquet"
    db_url = f"sqlite:///{workdir / 'sensors.db'}"
    train_file = workdir / "train-windows.parquet"
    models, extract_dir, predictions_dir = (
        workdir / "models",
        workdir / "extract",
        workdir / "predictions",
    )
    timings: dict[str, float] = {}
    report = DemoReport(stage_seconds=timings)

    _stage(
        "simulate",
        ["simulate", "--devices", str(config.devices), "--sensors", str(config.sensors),
         "--hours", str(config.hours), "--interval-seconds", str(config.interval_seconds),
         "--anomaly-rate", str(config.anomaly_rate), "--seed", str(config.seed),
         "--start", config.start_time().isoformat(), "--output", str(raw_file)],
        timings,
    )  # fmt: skip
    _stage(
        "aggregate",
        ["aggregate", "--input", str(raw_file), "--db", db_url,
         "--window-minutes", str(config.window_minutes)],
        timings,
    )  # fmt: skip

    started = time.perf_counter()
    end, split = _write_training_windows(db_url, train_file, config.score_hours)
    timings["split"] = round(time.perf_counter() - started, 2)
    _stage(
        "train",
        ["train", "--input", str(train_file), "--models", str(models),
         "--jobs", str(config.workers)],
        timings,
    )  # fmt: skip
    _stage(
        "extract",
        ["extract", "--db", db_url, "--end", end.isoformat(),
         "--lookback-minutes", str(config.score_hours * 60), "--output", str(extract_dir)],
        timings,
    )  # fmt: skip
    scored_dir, runs_dir = workdir / "scored", workdir / "runs"
    shutil.rmtree(scored_dir, ignore_errors=True)  # parts of an earlier demo are not this run's
    _stage(
        "score",
        ["score", "--input", str(extract_dir), "--models", str(models),
         "--output", str(predictions_dir), "--workers", str(config.workers),
         "--", "--predictions-dir", str(scored_dir)],
        timings,
    )  # fmt: skip
    _stage(
        "publish",
        ["publish", "--scored", str(scored_dir), "--extract", str(extract_dir),
         "--out", str(runs_dir), "--models", str(models)],
        timings,
    )  # fmt: skip

    started = time.perf_counter()
    from scoring.data.extract_folder import read_summary

    report.rows_in = int(read_summary(extract_dir)["rows"])
    report.drift = _published_drift(runs_dir)
    report.scoring_window = [split.isoformat(), end.isoformat()]
    predictions = normalize_readings(
        read_table(predictions_dir / "predictions.parquet"),
        source=str(predictions_dir / "predictions.parquet"),
        required=PREDICTION_COLUMNS,
    )
    raw = normalize_readings(read_table(raw_file), source=str(raw_file))
    training = normalize_readings(read_table(train_file), source=str(train_file))
    joined = evaluate(predictions, window_truth(raw, config.window_minutes), report)
    report.most_flagged_pairs = most_flagged(joined, max(1, config.chart_sensors - 1))
    report.clean_pair = clean_pair(joined, report.most_flagged_pairs)
    explain_false_positives(joined, training, report)
    chart = draw_chart(joined, training, report, workdir / "anomalies.png", models)
    timings["report"] = round(time.perf_counter() - started, 2)
    timings["total"] = round(sum(timings.values()), 2)
    report.files = {
        "readings": str(raw_file),
        "database": db_url,
        "models": str(models),
        "extract": str(extract_dir),
        "predictions": str(predictions_dir / "predictions.parquet"),
        "runs": str(runs_dir),
        "chart": str(chart),
        "report": str(workdir / "report.json"),
    }
    write_json(asdict(report), workdir / "report.json")
    return report


def _published_drift(runs_dir: Path) -> dict[str, object]:
    """The drift figures of the window the publish stage wrote (its summary.json)."""
    from scoring.steps.publish import SUMMARY_FILE

    found = sorted(runs_dir.glob(f"window=*/{SUMMARY_FILE}"))
    if not found:
        return {}
    import json

    summary = json.loads(found[-1].read_text(encoding="utf-8"))
    return {
        "statistic": summary.get("drift_statistic"),
        "pairs": summary.get("drift_pairs"),
        "drifted_pairs": summary.get("drifted_pairs"),
        "worst": summary.get("drift_worst") or [],
    }


def _write_training_windows(
    db_url: str, path: Path, score_hours: int
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Windows up to (last window - scoring period) as the training file; (end, split)."""
    from scoring.data.db import database, iter_pair_readings, time_range
    from scoring.data.files import write_table

    with database(db_url) as engine:
        first, last = time_range(engine)
        end = pd.Timestamp(last)
        split = end - pd.Timedelta(hours=score_hours)
        before_first = pd.Timestamp(first) - pd.Timedelta(seconds=1)
        frames = [
            frame
            for _, _, frame in iter_pair_readings(
                engine, before_first.to_pydatetime(), split.to_pydatetime()
            )
        ]
    if not frames:
        raise DemoStageError("split", 1, ["(no windows before the scoring period)"])
    write_table(pd.concat(frames, ignore_index=True), path)
    return end, split
