"""A Pulumi program of another team that builds on the batchscore stack through a
StackReference: it needs read access to the batchscore stack's state, nothing else.

It checks the outputs contract's major version before using any output, then uses only the
outputs it needs (here: where the predictions are, and the workspace that produced them).
"""

from __future__ import annotations

import pulumi
from compatibility import VERSION_OUTPUT, require_compatible


def consume(batchscore_stack: str) -> dict[str, pulumi.Output]:
    """Read ``batchscore_stack`` (``<org>/batchscore/<env>``); the values this team uses."""
    batchscore = pulumi.StackReference("batchscore", stack_name=batchscore_stack)
    version = batchscore.require_output(VERSION_OUTPUT).apply(require_compatible)

    def after_check(name: str) -> pulumi.Output:
        # Every value waits for the version check: an incompatible stack fails the program
        # before anything is built from its outputs.
        return pulumi.Output.all(version, batchscore.require_output(name)).apply(
            lambda pair: pair[1]
        )

    predictions = after_check("predictionsContainerUrl")
    return {
        "batchscoreContract": version,
        "predictionsContainerUrl": predictions,
        "scoredPrefixUrl": predictions.apply(lambda url: f"{url}/scored/"),
        "mlWorkspaceId": after_check("mlWorkspaceId"),
    }
