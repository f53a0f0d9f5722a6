"""The scoring pipeline's steps, run the same way locally and on Azure ML:

* :mod:`.extract` (command step): ``python -m scoring.steps.extract``;
* :mod:`.score` (parallel step): the entry script Azure ML's parallel driver loads;
* :mod:`.publish` (command step): ``python -m scoring.steps.publish``;

and the training pipeline's:

* :mod:`.train` (parallel step): the entry script fitting every pair of a shard;
* :mod:`.promote` (command step): ``python -m scoring.steps.promote``, the gate and the model
  store's next generation (:mod:`scoring.models.generations`).
"""

from pathlib import Path

#: the parallel step's entry script, and its path inside the code snapshot (the scoring/
#: folder) that Azure ML's ``task.entry_script`` names
ENTRY_SCRIPT = Path(__file__).resolve().parent / "score.py"
ENTRY_SCRIPT_IN_SNAPSHOT = "steps/score.py"


def run_step(prog: str, description: str, add_arguments, run, argv: list[str] | None) -> int:
    """``python -m scoring.steps.<step>``: parse ``argv`` with the step's own arguments (the same
    ones ``batchscore <step>`` takes), log to stderr, run it; errors become one line and an
    exit code (:func:`scoring.errors.run_reporting_errors`)."""
    import argparse

    from scoring import log_config
    from scoring.errors import EXIT_OK, EXIT_USAGE, run_reporting_errors

    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the reason
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    log_config.configure("INFO")
    return run_reporting_errors(lambda: run(args))
