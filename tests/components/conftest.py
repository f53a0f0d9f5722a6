"""Fixtures of the infrastructure tests: recording Pulumi mocks for the component tests."""

import pulumi
import pytest

from tests.components.recording_mocks import RecordingMocks


@pytest.fixture
def mocks() -> RecordingMocks:
    recorder = RecordingMocks()
    pulumi.runtime.set_mocks(recorder, project="batchscore", stack="test", preview=False)
    return recorder
