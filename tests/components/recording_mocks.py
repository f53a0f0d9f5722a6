"""Pulumi mocks that record every registered resource, for the component tests of the dynamic
providers (the `mocks` fixture in this folder's conftest.py; importable for tests that set
the mocks up themselves)."""

from __future__ import annotations

import pulumi


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that keep every registered resource (outputs = inputs; no invokes)."""

    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        raise NotImplementedError(args.token)
