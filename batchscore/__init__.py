"""batchscore: the command line and tooling around the scoring runtime.

Never shipped to the cluster: the command line (:mod:`batchscore.cli`, one module per command
in :mod:`batchscore.commands`), the simulator, the local aggregation, the demo, the
benchmark, Azure uploads and senders (:mod:`batchscore.cloud`), and the export and submission
of the pipeline the stack deploys (:mod:`batchscore.aml`). Below it: the stack and what it
deploys (``components``: config, the Azure ML definitions in :mod:`components.aml`) and the
runtime (``scoring``); nothing below imports this package.
"""
