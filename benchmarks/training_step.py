"""Per-pair cost of the training pipeline's train step, as the cluster runs it: one shard of
``--pairs`` pairs of ``--days`` of 5-minute readings through ``steps/train.py``'s run() (hold-out
split, fit, serialize, pack, reload the candidate, flag rates against the current model), then
the promote step over its candidates. Prints seconds per pair (fastest of ``--repeat``).

    python benchmarks/training_step.py --pairs 40 --days 14 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from scoring.steps import promote, train


def shard(pairs: int, days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-01-01", periods=days * 288, freq="5min")
    return pd.concat(
        pd.DataFrame({"TS": ts, "Device": f"dev-{i:05d}", "Sensor": "temp",
                      "Value": rng.normal(20, 1, len(ts)), "Shard": "00000"})
        for i in range(pairs)
    )  # fmt: skip


def one_run(frame: pd.DataFrame, models: Path, work: Path) -> tuple[float, float]:
    """(train step seconds, promote step seconds) of one run into ``models``."""
    candidates = work / "candidates"
    shutil.rmtree(candidates, ignore_errors=True)
    sys.argv = ["train.py", "--candidates", str(candidates), "--models", str(models)]
    started = time.perf_counter()
    train.init()
    train.run(frame, SimpleNamespace(partition_key_value={"Shard": "00000"}))
    trained = time.perf_counter() - started
    started = time.perf_counter()
    code = promote.main(
        ["--candidates", str(candidates), "--models", str(models),
         "--max-flag-rate-delta-percent", "100"]
    )  # fmt: skip
    assert code == 0
    return trained, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = shard(args.pairs, args.days, seed=1)
    first, again = [], []
    for _ in range(args.repeat):
        work = Path(tempfile.mkdtemp(prefix="bench-train-"))
        try:
            first.append(one_run(frame, work / "models", work))  # no current model
            again.append(one_run(frame, work / "models", work))  # against generation 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
    best = {
        "pairs": args.pairs,
        "rows_per_pair": args.days * 288,
        "train_s_per_pair_first": min(t for t, _ in first) / args.pairs,
        "train_s_per_pair_again": min(t for t, _ in again) / args.pairs,
        "promote_s_per_pair_again": min(p for _, p in again) / args.pairs,
    }
    print(json.dumps(best, indent=1))


if __name__ == "__main__":
    main()
