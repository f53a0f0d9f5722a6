"""Toy entry script with the one-argument ``run(mini_batch)`` form and no init/shutdown."""

import pandas as pd


def run(mini_batch):
    if isinstance(mini_batch, pd.DataFrame):
        return mini_batch.assign(Score=mini_batch["Value"])
    return [str(path) for path in mini_batch]
