"""Toy entry script without run(): the runner must refuse it before starting workers."""


def init():
    pass
