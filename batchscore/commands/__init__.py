"""One module per command of the ``batchscore`` command line, each exposing
``add_arguments(parser)`` and ``run(args) -> exit code``."""
