"""Per-sensor batch scoring: the code that runs on the Azure ML cluster and on a laptop.

Nothing in this package imports Pulumi: it is what the scoring image installs.
"""

__version__ = "0.1.0"
