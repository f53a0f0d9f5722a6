"""``python -m scoring``: what the runtime runs, named. The command line is ``batchscore``
(``python -m batchscore``); the runtime never reaches up into it, and the scoring image carries
the runtime only.
"""

import sys

STEPS_HELP = """\
The scoring runtime. Its pipeline steps run as:

  python -m scoring.steps.extract --help    one window of readings into an extract folder
  python -m scoring.steps.publish --help    the scored rows of a run into its window folder
  python -m scoring.steps.promote --help    a training run's candidates through the gate
  scoring/steps/score.py                    the scoring step's entry script (Azure ML loads it)
  scoring/steps/train.py                    the training step's entry script

The command line around it (simulate, train, score, pipeline, ...) is `batchscore`
(`python -m batchscore --help`), where that package is installed.
"""

if __name__ == "__main__":
    asked_for_help = any(arg in ("-h", "--help") for arg in sys.argv[1:])
    print(
        STEPS_HELP, file=sys.stdout if asked_for_help or len(sys.argv) == 1 else sys.stderr, end=""
    )
    sys.exit(0 if asked_for_help or len(sys.argv) == 1 else 2)
