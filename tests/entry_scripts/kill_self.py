"""Toy entry script: its worker process kills itself (SIGKILL) on a device's first attempt.

A marker file tells the retry (on a fresh worker) that it is a retry.
Program arguments: ``--kill-device``, ``--marker-dir``, ``--exit-code`` (use ``os._exit``
with this code instead of SIGKILL).
"""

import argparse
import os
import signal

from _attempts import batch_key, record_attempt

ARGS = None


def init():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-device", required=True)
    parser.add_argument("--marker-dir", required=True)
    parser.add_argument("--exit-code", type=int)
    ARGS, _ = parser.parse_known_args()


def run(mini_batch, mini_batch_context):
    attempt = record_attempt(ARGS.marker_dir, batch_key(mini_batch, mini_batch_context))
    if mini_batch_context.partition_key_value["Device"] == ARGS.kill_device and attempt == 1:
        if ARGS.exit_code is not None:
            os._exit(ARGS.exit_code)
        os.kill(os.getpid(), signal.SIGKILL)
    return mini_batch.assign(Score=mini_batch["Value"])
