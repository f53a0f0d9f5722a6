"""Deploy-time Azure ML v2 definitions of the scoring pipeline (azure-ai-ml only; never the
v1 SDK): ``settings`` (typed config, no Azure imports), ``components``, ``pipeline``,
``schedule`` and ``export`` (YAML + offline validation). Used by ``batchscore pipeline``
and the Pulumi provider; nothing here runs on the cluster (the steps are :mod:`scoring.steps`).
"""
