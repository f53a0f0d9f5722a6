"""Toy entry script whose init() raises: the run fails at once, naming the reason."""


def init():
    raise FileNotFoundError("model store models/ is empty")


def run(mini_batch):
    return mini_batch
