"""Toy entry script: returns every input row (tabular) or one row per file (files).

Program arguments: ``--scale`` multiplies Value into Score; ``--shutdown-dir`` gets one
file per worker process from ``shutdown()``; ``--models`` is accepted and ignored.
"""

import argparse
import os
from pathlib import Path

import pandas as pd

ARGS = None
INIT_CALLS = 0


def init():
    global ARGS, INIT_CALLS
    parser = argparse.ArgumentParser()
    parser.add_argument("--models")
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--shutdown-dir")
    ARGS, _ = parser.parse_known_args()
    INIT_CALLS += 1


def run(mini_batch, mini_batch_context):
    assert INIT_CALLS == 1, "init() must run exactly once per worker before run()"
    if isinstance(mini_batch, pd.DataFrame):
        out = mini_batch.copy()
        out["Score"] = out["Value"] * ARGS.scale
        out["IsAnomaly"] = (out["Value"] > 100).astype(int)
        out["ModelVersion"] = "toy-" + mini_batch_context.partition_key_value["Sensor"]
        return out
    return [{"file": os.path.basename(path), "bytes": os.path.getsize(path)} for path in mini_batch]


def shutdown():
    if ARGS.shutdown_dir:
        Path(ARGS.shutdown_dir, f"shutdown-{os.getpid()}").write_text("done")
