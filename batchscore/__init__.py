"""batchscore: the command line and tooling around the scoring runtime.

Never shipped to the cluster: the command line (:mod:`batchscore.cli`, one module per command
in :mod:`batchscore.commands`), the simulator, the local aggregation, the demo, the
benchmark, Azure uploads and senders (:mod:`batchscore.cloud`) and the deploy-time Azure ML
definitions (:mod:`batchscore.aml`). The runtime they drive is the ``scoring`` package.
"""
