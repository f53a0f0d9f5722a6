"""Toy entry script: drops rows it cannot score and says why in a WARNING log record.

Tabular: rows with a negative Value are dropped. Files: files whose name contains
``skip`` are dropped. Program argument ``--marker-dir`` counts attempts.
"""

import argparse
import logging
import os

import pandas as pd
from _attempts import batch_key, record_attempt

log = logging.getLogger("toy.short")
ARGS = None


def init():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker-dir")
    ARGS, _ = parser.parse_known_args()


def run(mini_batch, mini_batch_context):
    record_attempt(ARGS.marker_dir, batch_key(mini_batch, mini_batch_context))
    if isinstance(mini_batch, pd.DataFrame):
        bad = mini_batch["Value"] < 0
        for ts in mini_batch.loc[bad, "TS"]:
            log.warning("dropped row TS=%s: negative Value", ts)
        return mini_batch.loc[~bad].assign(Score=1.0)
    kept = []
    for path in mini_batch:
        name = os.path.basename(path)
        if "skip" in name:
            log.warning("dropped file %s", name)
        else:
            kept.append((name, len(name)))
    return kept
