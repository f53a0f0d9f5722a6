"""The Azure ML v2 definitions the stack deploys (azure-ai-ml only; never the v1 SDK):
``components`` (extract, score, publish), ``pipeline`` (the job around them) and ``schedule``.
Their settings are :mod:`components.config.pipeline`. Used by the scoring pipeline's dynamic
provider and by ``batchscore pipeline``; nothing here runs on the cluster (the steps are
:mod:`scoring.steps`).
"""
