"""Azure ML v2 definitions of the scoring pipeline (azure-ai-ml only; never the v1 SDK).

Modules: ``settings`` (typed config, no Azure imports), ``components``, ``pipeline``,
``schedule``, ``export`` (YAML + offline validation) and ``publish`` (the step that runs on
the cluster; it needs only pandas/pyarrow). Import the submodule you need: this package
imports nothing itself, so the scoring image (which has no azure-ai-ml) can run ``publish``.
"""
