"""StreamJobStart: run the Stream Analytics job once its table exists, stop it before destroy,
through the dynamic resource of :mod:`components.providers.stream_job`.

``StreamJobStartProvider`` stays importable from here: deployed stacks know it by this module
(:func:`components.providers.common.pickled_as`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from components.providers.stream_job import (
    START_MODES,
    StreamJobStartProvider,
    StreamJobStartResource,
)

__all__ = ["StreamJobStart", "StreamJobStartArgs", "StreamJobStartProvider"]


@dataclass
class StreamJobStartArgs:
    """Which job to run, and what must exist before it starts.

    ``config_hash`` must change exactly when anything the job, its input or its output is
    declared with changes (``StreamProcessing.config_hash``); a change restarts the job.
    ``start_after`` lists what the start waits for: the SqlBootstrap component at least, and
    the StreamProcessing component so a restart follows every update of the job.
    """

    subscription_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    job_name: pulumi.Input[str]
    config_hash: pulumi.Input[str]
    start_after: Sequence[pulumi.Resource] = field(default_factory=list)
    start_mode: str = "JobStartTime"


class StreamJobStart(pulumi.ComponentResource):
    """Runs the Stream Analytics job after the SQL bootstrap; stops it before destroy."""

    job_state: pulumi.Output[str]

    def __init__(
        self, name: str, args: StreamJobStartArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:StreamJobStart", name, None, opts)
        if args.start_mode not in START_MODES:
            raise ValueError(
                f"StreamJobStart {name}: start_mode {args.start_mode!r} must be one of "
                f"{', '.join(START_MODES)}"
            )
        self.start = StreamJobStartResource(
            f"{name}-start",
            {
                "subscriptionId": args.subscription_id,
                "resourceGroupName": args.resource_group_name,
                "jobName": args.job_name,
                "startMode": args.start_mode,
                "configHash": args.config_hash,
            },
            pulumi.ResourceOptions(parent=self, depends_on=list(args.start_after)),
        )
        self.job_state = self.start.jobState
        self.register_outputs({"jobState": self.job_state})
