"""`pulumi up --plan` applies what the preview recorded: nothing the program declares may take a
different known value at preview and at update (pulumi/pulumi#17546)."""

from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime import rpc

from components.shared import registry_auth
from tests.components.recording_mocks import RecordingMocks


def _password(preview: bool, exchanged: list[str]) -> pulumi.Output[str]:
    pulumi.runtime.set_mocks(RecordingMocks(), project="batchscore", stack="dev", preview=preview)

    def exchange(login_server: str, _tenant: str, _token: str) -> str:
        exchanged.append(login_server)
        return f"refresh-token-{len(exchanged)}"  # a new token every time, like the registry

    with registry_auth.use_exchanger(exchange):
        return registry_auth.registry_password("cr1.azurecr.io", "tenant-1", "entra-abc")


@pytest.mark.parametrize("preview", [True, False])
def test_the_registry_password_is_unknown_at_preview_and_exchanged_at_update(preview: bool):
    exchanged: list[str] = []

    @pulumi.runtime.test
    def run():
        password = _password(preview, exchanged)

        async def check():
            serialized = await rpc.serialize_property(password, [], None)
            assert await password.is_secret()
            if preview:  # recorded in the plan as "any value"
                assert serialized == {
                    rpc._special_sig_key: rpc._special_secret_sig,
                    "value": rpc.UNKNOWN,
                }
                assert exchanged == []
            else:
                assert serialized["value"] == "refresh-token-1"
                assert exchanged == ["cr1.azurecr.io"]

        return pulumi.Output.from_input(check())

    run()
