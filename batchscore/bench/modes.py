"""The benchmark's modes and the names every part of it shares."""

from __future__ import annotations

LOOP, SHARD, FILE, PAIR, KERNEL, PROCESS, TRAIN = (
    "sklearn-loop",
    "score-shard",
    "score-file",
    "score-pair",
    "fleet-kernel",
    "process-per-pair",
    "train",
)
MODES = (LOOP, SHARD, FILE, PAIR, KERNEL, PROCESS, TRAIN)
DEFAULT_MODES = (LOOP, SHARD, FILE, PAIR, KERNEL, TRAIN)
#: the modes that run ``batchscore score``, each on its own input shape
SCORE_MODES = (SHARD, FILE, PAIR)
#: the product's two extract layouts and the mode that scores each
LAYOUT_OF = {SHARD: "shard", PAIR: "pair"}
#: the training baseline, measured beside ``train``
FIT_LOOP = "fit-loop"
SCORE_TOLERANCE = 1e-9
PREDICTIONS_FILE = "predictions.parquet"
