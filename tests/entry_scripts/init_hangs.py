"""Toy entry script whose init() never returns: the run fails once the start-up time is up."""

import time


def init():
    time.sleep(3600)


def run(mini_batch):
    return mini_batch
