"""``python -m scoring``: the ``batchscore`` command line, where it is installed.

The scoring image carries the runtime only: there this names the pipeline steps (which run
as ``python -m scoring.steps.<step>``) instead of failing on an import.
"""

import sys

STEPS_HELP = """\
The scoring runtime. The batchscore command line is not installed here (the scoring image
carries the runtime only). The pipeline's steps run as:

  python -m scoring.steps.extract --help    one window of readings into an extract folder
  python -m scoring.steps.publish --help    the scored rows of a run into its window folder
  scoring/steps/score.py                    the parallel step's entry script (Azure ML loads it)
"""

if __name__ == "__main__":
    try:
        from batchscore.cli import entry
    except ImportError:
        asked_for_help = any(arg in ("-h", "--help") for arg in sys.argv[1:])
        print(STEPS_HELP, file=sys.stdout if asked_for_help else sys.stderr, end="")
        sys.exit(0 if asked_for_help else 2)
    entry()
