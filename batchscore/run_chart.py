"""``runs chart``: anomalies and failures per scored window, as a PNG.

Two panels over the windows' end times (UTC): the rows flagged anomalous per window, and per
window the (Device, Sensor) pairs that failed to score, the mini-batches that failed and the
pairs that drifted from their models' baselines (runs published with the model store).
Windows whose run found no readings or failed are marked on both, so an ingestion outage
shows as a gap with a marker rather than as a quiet stretch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from batchscore.run_history import History
from scoring.data.files import atomic_path
from scoring.steps.publish import EMPTY_WINDOW, FAILED, INCOMPLETE

#: room on each side of a lone window (a single bar would otherwise fill the axis)
LONE_WINDOW_MARGIN_HOURS = 3


def draw_runs_chart(history: History, path: Path) -> Path:
    """Write the chart of ``history`` (at least one run) to ``path`` (PNG), atomically."""
    import matplotlib.pyplot as plt

    fig = runs_figure(history)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path


def runs_figure(history: History) -> Any:
    """The chart as a matplotlib figure (the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = history.runs
    ends = [r.window_end for r in runs]
    width = _bar_width_days(ends)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    top.bar(ends, [r.summary.anomalies for r in runs], width=width, color="crimson")
    top.set_ylabel("anomalies (rows flagged)")
    top.set_title(f"{len(runs)} scored windows", fontsize=10, loc="left", pad=18)
    bottom.bar(ends, [r.summary.pairs_failed for r in runs], width=width, color="darkorange",
               label="pairs that failed to score")  # fmt: skip
    bottom.plot(ends, [len(r.summary.failed_mini_batches) for r in runs], "k.",
                label="failed mini-batches")  # fmt: skip
    drift = [
        (r.window_end, r.summary.drifted_pairs) for r in runs if r.summary.drifted_pairs is not None
    ]
    if drift:  # runs published with the model store; the others have no drift to show
        bottom.plot([t for t, _ in drift], [n for _, n in drift], "d", color="purple",
                    markersize=5, label="pairs drifted from their models")  # fmt: skip
    bottom.set_ylabel("failures, drifted pairs\n(count)")
    bottom.set_xlabel("window end (UTC)")
    marks = (
        (EMPTY_WINDOW, "s", "empty window"),
        (FAILED, "X", "run failed"),
        (INCOMPLETE, "v", "rows missing"),
    )
    for status, marker, label in marks:
        marked = [r.window_end for r in runs if r.summary.status == status]
        if marked:
            for ax in (top, bottom):
                ax.plot(marked, [0] * len(marked), marker, color="grey", markersize=8,
                        clip_on=False, label=label if ax is bottom else None)  # fmt: skip
    bottom.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=3, frameon=False)
    highest = {
        top: max((r.summary.anomalies for r in runs), default=0),
        bottom: max(
            (max(r.summary.pairs_failed, len(r.summary.failed_mini_batches)) for r in runs),
            default=0,
        ),
    }
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3)
        # counts: whole ticks, and at least 0..1 so a panel of zeros shows no 0.2 steps
        ax.set_ylim(0, max(1, highest[ax]) * 1.15)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(set(ends)) == 1:
        margin = pd.Timedelta(hours=LONE_WINDOW_MARGIN_HOURS)
        bottom.set_xlim(ends[0] - margin, ends[0] + margin)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(bottom.xaxis.get_major_locator()))
    fig.tight_layout()
    return fig


def _bar_width_days(ends: list) -> float:
    """Bars as wide as most of the gap between windows (matplotlib dates count in days)."""
    gaps = [(b - a).total_seconds() for a, b in zip(ends, ends[1:], strict=False) if b > a]
    return 0.8 * (min(gaps) if gaps else 3600) / 86400
