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
#: the training baseline, measured beside ``train``: a plain ``Pipeline.fit`` a pair (the
#: reference model, scikit-learn's OneClassSVM on every row) ...
FIT_LOOP = "fit-loop"
#: ... and ``train`` fitting that same reference model (``--nu``/``--gamma`` given)
TRAIN_REFERENCE = "train-reference"
#: the default model (trimmed, calibrated) fitted a pair through scikit-learn's public API
FIT_LOOP_DEFAULT = "fit-loop-default"
#: what ``--modes train`` times, each product run beside the loop that fits the same models
TRAINING_TIMED = (FIT_LOOP, TRAIN_REFERENCE, FIT_LOOP_DEFAULT, TRAIN)
SCORE_TOLERANCE = 1e-9
PREDICTIONS_FILE = "predictions.parquet"
