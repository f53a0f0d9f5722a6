"""Shared pytest set-up: the repository root on sys.path so `scoring` and `components` import,
and recording Pulumi mocks for the component tests of the dynamic providers."""

import sys
from pathlib import Path

import pulumi
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that keep every registered resource (outputs = inputs; no invokes)."""

    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        raise NotImplementedError(args.token)


@pytest.fixture
def mocks() -> RecordingMocks:
    recorder = RecordingMocks()
    pulumi.runtime.set_mocks(recorder, project="batchscore", stack="test", preview=False)
    return recorder
