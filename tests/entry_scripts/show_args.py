"""Toy entry script: one row per file with the program arguments the script received."""

import sys


def run(mini_batch):
    arguments = " ".join(sys.argv[1:])
    return [{"file": path.rsplit("/", 1)[-1], "argv": arguments} for path in mini_batch]
