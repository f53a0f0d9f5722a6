"""Toy entry script: hangs on one device's partition (first attempt only, or always).

Program arguments: ``--hang-device``, ``--marker-dir``, ``--always``.
"""

import argparse
import time

from _attempts import batch_key, record_attempt

ARGS = None


def init():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--hang-device", required=True)
    parser.add_argument("--marker-dir", required=True)
    parser.add_argument("--always", action="store_true")
    ARGS, _ = parser.parse_known_args()


def run(mini_batch, mini_batch_context):
    attempt = record_attempt(ARGS.marker_dir, batch_key(mini_batch, mini_batch_context))
    if mini_batch_context.partition_key_value["Device"] == ARGS.hang_device:
        if ARGS.always or attempt == 1:
            time.sleep(3600)
    return mini_batch.assign(Score=mini_batch["Value"])
