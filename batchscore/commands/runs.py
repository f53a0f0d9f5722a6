"""``batchscore runs <action>``: the run history, from the summaries the publish step wrote.

``list`` prints one line per scored window (status, rows, anomalies, failures); ``show``
one run in full (failed pairs and mini-batches with their reasons, timings); ``chart``
writes a PNG of anomalies and failures per window. The summaries come from a local folder
(``--predictions DIR``: what ``batchscore publish --out DIR`` or the demo wrote) or from the
predictions container (``--account-url``, Entra auth, *Storage Blob Data Reader*; or a
connection string for Azurite)::

    batchscore runs list --predictions .demo/runs
    batchscore runs list --account-url https://<account>.blob.core.windows.net --last 24
    batchscore runs show 2026-01-01T10:00:00Z --account-url https://<account>...
    batchscore runs chart --out runs.png --account-url https://<account>...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from batchscore.commands.blob_source import add_blob_auth, open_container, uses_blob
from components.config.pipeline import PREDICTIONS_PATH
from scoring.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from batchscore.run_history import History

ACTIONS = ("list", "show", "chart")
DEFAULT_CONTAINER = "predictions"


def _source_arguments() -> argparse.ArgumentParser:
    """Where the summaries are: the flags every action takes."""
    parent = argparse.ArgumentParser(add_help=False)
    where = parent.add_argument_group("where the run summaries are (one of)")
    source = where.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--predictions",
        type=Path,
        metavar="DIR",
        help="a local predictions root holding window=<end>/summary.json folders",
    )
    add_blob_auth(source)
    parent.add_argument(
        "--container",
        default=DEFAULT_CONTAINER,
        metavar="NAME",
        help=f"the predictions container (default: {DEFAULT_CONTAINER})",
    )
    parent.add_argument(
        "--prefix",
        default=PREDICTIONS_PATH,
        metavar="P",
        help=f"the folder of the container holding the windows (default: {PREDICTIONS_PATH}, "
        "where the scoring pipeline publishes)",
    )
    return parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = _source_arguments()
    actions = parser.add_subparsers(dest="runs_action", metavar="<action>")
    listing = actions.add_parser(
        "list",
        parents=[source],
        help="one line per scored window: status, rows, anomalies, failures",
        description="List the scored windows, oldest first, with their status, rows, "
        "anomalies and failures, and the totals.",
    )
    listing.add_argument("--last", type=int, metavar="N", help="only the latest N windows")
    show = actions.add_parser(
        "show",
        parents=[source],
        help="one run in full: failed pairs and mini-batches with reasons, timings",
        description="Show one run's summary in full.",
    )
    show.add_argument(
        "window",
        metavar="WINDOW",
        help="the window's folder (window=20260101T100000Z) or its end as ISO 8601 time",
    )
    chart = actions.add_parser(
        "chart",
        parents=[source],
        help="a PNG of anomalies and failures per window",
        description="Draw anomalies (rows flagged) and failures (pairs, mini-batches) per "
        "window, empty and failed windows marked, as a PNG.",
    )
    chart.add_argument("--out", required=True, type=Path, metavar="FILE.png", help="the PNG")
    chart.add_argument("--last", type=int, metavar="N", help="only the latest N windows")


def run(args: argparse.Namespace) -> int:
    from batchscore.run_history import run_text, table_text, window_key
    from scoring.data.files import require_output_file

    action = getattr(args, "runs_action", None)
    if action not in ACTIONS:
        raise UsageError(f"runs: choose an action: {', '.join(ACTIONS)} (see `batchscore runs -h`)")
    last = getattr(args, "last", None)
    if last is not None and last < 1:
        raise UsageError(f"--last {last}: must be at least 1")
    if action == "chart":
        if args.out.suffix.lower() != ".png":
            raise UsageError(f"--out {args.out}: the chart is a PNG; name it *.png")
        require_output_file("--out", args.out)
    if action == "show":
        window_key(args.window)  # a time that is not one is refused before anything is read
    history = _read(args)
    if action != "show":  # show names the one window asked for, when its summary is the problem
        for problem in history.unreadable:
            print(f"warning: {problem}", file=sys.stderr)
    history = history.last(last)
    if action == "list":
        print(table_text(history))
    elif action == "show":
        print(run_text(history.find(args.window)))
    else:
        from batchscore.run_chart import draw_runs_chart

        if not history.runs:
            raise UsageError("no readable run summary to chart")
        print(f"wrote {draw_runs_chart(history, args.out)} ({len(history.runs)} windows)")
    return EXIT_OK


def _read(args: argparse.Namespace) -> History:
    from batchscore.run_history import read_folder

    if not uses_blob(args):
        return read_folder(args.predictions)
    from batchscore.cloud.run_summaries import read_container

    with open_container(args, args.container) as container:
        return read_container(container, args.prefix)
