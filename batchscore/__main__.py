"""``python -m batchscore <command>``."""

import sys

from batchscore.cli import main

if __name__ == "__main__":
    sys.exit(main())
