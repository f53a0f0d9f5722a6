"""Toy entry script: the first run() of the first worker arms a timer that ends its process
(exit code 5) shortly after that run() returned: the worker dies idle or during its next
mini-batch. A marker file counts processes, so the replacement worker carries on."""

import argparse
import os
import threading
import time

from _attempts import batch_key, record_attempt

ARMED = False


def run(mini_batch, mini_batch_context):
    global ARMED
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker-dir", required=True)
    args, _ = parser.parse_known_args()
    record_attempt(args.marker_dir, batch_key(mini_batch, mini_batch_context))
    if not ARMED:
        ARMED = True
        if record_attempt(args.marker_dir, "process-starts") == 1:
            threading.Timer(0.1, os._exit, (5,)).start()
            return mini_batch.assign(Score=mini_batch["Value"])
    time.sleep(0.3)  # the timer fires while the next mini-batch runs (or before it starts)
    return mini_batch.assign(Score=mini_batch["Value"])
