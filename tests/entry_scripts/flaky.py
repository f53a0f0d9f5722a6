"""Toy entry script: every mini-batch raises on its first ``--fail-attempts`` attempts.

Program arguments: ``--marker-dir`` (required: attempts are counted there),
``--fail-attempts`` (default 1), ``--only-device`` (other devices never fail).
"""

import argparse

from _attempts import batch_key, record_attempt

ARGS = None


def init():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker-dir", required=True)
    parser.add_argument("--fail-attempts", type=int, default=1)
    parser.add_argument("--only-device")
    ARGS, _ = parser.parse_known_args()


def run(mini_batch, mini_batch_context):
    attempt = record_attempt(ARGS.marker_dir, batch_key(mini_batch, mini_batch_context))
    device = mini_batch_context.partition_key_value.get("Device")
    targeted = ARGS.only_device is None or device == ARGS.only_device
    if targeted and attempt <= ARGS.fail_attempts:
        raise RuntimeError(f"transient failure on attempt {attempt}")
    return mini_batch.assign(Score=mini_batch["Value"], Attempt=attempt)
