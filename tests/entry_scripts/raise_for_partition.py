"""Toy entry script: raises for a chosen device (tabular) or file name (files), always.

Program arguments: ``--fail-device``, ``--fail-file`` (a substring of the file name),
``--marker-dir`` (counts attempts per mini-batch).
"""

import argparse
import os

import pandas as pd
from _attempts import batch_key, record_attempt

ARGS = None


def init():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-device", action="append", default=[])
    parser.add_argument("--fail-file")
    parser.add_argument("--marker-dir")
    ARGS, _ = parser.parse_known_args()


def run(mini_batch, mini_batch_context):
    record_attempt(ARGS.marker_dir, batch_key(mini_batch, mini_batch_context))
    if isinstance(mini_batch, pd.DataFrame):
        device = mini_batch_context.partition_key_value["Device"]
        if device in ARGS.fail_device:
            raise ValueError(f"no model for device {device}")
        return mini_batch.assign(Score=mini_batch["Value"])
    for path in mini_batch:
        if ARGS.fail_file and ARGS.fail_file in os.path.basename(path):
            raise OSError(f"cannot parse {os.path.basename(path)}")
    return [os.path.basename(path) for path in mini_batch]
