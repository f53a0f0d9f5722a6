"""The Azure stack of batchscore as Pulumi components, plus the offline plan.

Kept import-free on purpose: `components.config` (pure validation) and the dynamic
providers must be importable without pulling in every pulumi-azure-native module.
"""
