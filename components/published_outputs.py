"""PublishedOutputs: the stack outputs written as ``stack-outputs.json`` to the storage
account's ``stack-outputs`` container, so other teams read them with a Storage Blob Data
Reader role on that container and no access to the Pulumi state.

The document is exactly ``pulumi stack output --json`` (contract version included) and
validates against ``contracts/stack-outputs.schema.json``. No output is secret; the document
refuses to be published if one ever becomes secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from components.providers.published_blob import PublishedBlob
from components.shared.placement import child_options

BLOB_NAME = "stack-outputs.json"


@dataclass
class PublishedOutputsArgs:
    account_name: pulumi.Input[str]
    container_name: pulumi.Input[str]
    # The outputs document (components.shared.stack_outputs.export_stack_outputs).
    document: pulumi.Output[str]
    # What must exist before the deployer can write blobs (its data role in effect).
    write_after: Sequence[pulumi.Resource] = field(default_factory=list)


class PublishedOutputs(pulumi.ComponentResource):
    """The outputs document as a blob other teams can read."""

    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: PublishedOutputsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchscore:index:PublishedOutputs", name, None, opts)
        content = pulumi.Output.all(args.document, _secret_flag(args.document)).apply(
            lambda pair: _public(pair[0], pair[1])
        )
        blob = PublishedBlob(
            f"{name}-blob",
            {
                "accountName": args.account_name,
                "containerName": args.container_name,
                "blobName": BLOB_NAME,
                "content": content,
                "contentType": "application/json",
            },
            child_options(self, depends_on=list(args.write_after)),
        )
        self.url = blob.url
        self.register_outputs({"url": self.url})


def _secret_flag(output: pulumi.Output[str]) -> pulumi.Output[bool]:
    """Whether ``output`` is secret, as a plain (non-secret) Output known when it is."""
    return pulumi.Output(set(), output.is_secret(), output.is_known())


def _public(document: str, secret: bool) -> str:
    if secret:
        raise ValueError(
            "a stack output became secret: it must not be published to stack-outputs.json "
            "(components.shared.stack_outputs lists only non-secret outputs)"
        )
    return document
