"""``python -m batchscore <command>``."""

from batchscore.cli import entry

if __name__ == "__main__":
    entry()
