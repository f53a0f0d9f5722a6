"""The Pulumi dynamic providers' code: Azure errors explained, retried Azure calls, diffs.

Nothing here imports a component module.
"""
