"""The benchmark's modes and the names every part of it shares."""

from __future__ import annotations

LOOP, SHARD, PAIR, KERNEL, PROCESS = (
    "sklearn-loop",
    "score-shard",
    "score-pair",
    "fleet-kernel",
    "process-per-pair",
)
MODES = (LOOP, SHARD, PAIR, KERNEL, PROCESS)
DEFAULT_MODES = (LOOP, SHARD, PAIR, KERNEL)
#: the product's two layouts and the mode that scores each
LAYOUT_OF = {SHARD: "shard", PAIR: "pair"}
SCORE_TOLERANCE = 1e-9
PREDICTIONS_FILE = "predictions.parquet"
