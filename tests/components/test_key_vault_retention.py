"""keyVaultSoftDeleteDays cannot change on an existing stack: Key Vault fixes its soft-delete
retention at creation (learn.microsoft.com/azure/key-vault/general/soft-delete-overview), and
the provider would plan the change as an in-place update that Azure then refuses. The vault
carries a before_update hook that refuses the change by name before Azure is asked.

Mocks record the hook's binding but never run it; the hook's own callback is run here the way
the engine does before the vault's update, with the vault's inputs of two real plans."""

from __future__ import annotations

import pulumi
import pytest

from components.config.errors import ConfigError
from components.offline.plan import plan_in_subprocess
from components.offline.plan_view import PlanView
from components.shared.immutable_inputs import input_at, refuse_change_hook
from scoring.errors import UsageError

VAULT = "azure-native:keyvault:Vault"
RETENTION = ("properties", "softDeleteRetentionInDays")


@pytest.fixture(scope="module")
def before() -> PlanView:
    return PlanView(plan_in_subprocess("dev"))


@pytest.fixture(scope="module")
def after() -> PlanView:
    return PlanView(plan_in_subprocess("dev", overrides={"keyVaultSoftDeleteDays": "30"}))


def the_hook() -> pulumi.ResourceHook:
    return refuse_change_hook(
        "ml-vault-retention-is-fixed",
        path=RETENTION,
        config_key="keyVaultSoftDeleteDays",
        reason="Key Vault fixes its soft-delete retention when the vault is created",
    )


def engine_calls(hook: pulumi.ResourceHook, old: dict, new: dict) -> None:
    """What the engine does before the vault's update: the bound hook with both inputs."""
    hook.callback(
        pulumi.ResourceHookArgs(
            urn="urn:pulumi:dev::batchscore::vault",
            id="/vaults/kv",
            name="ml-vault",
            type=VAULT,
            new_inputs=new,
            old_inputs=old,
            old_outputs={},
        )
    )


def test_the_vault_carries_the_hook(after: PlanView) -> None:
    vault = after.one(VAULT)
    assert vault.hooks.get("beforeUpdate") == ("ml-vault-retention-is-fixed",)


def test_a_changed_retention_is_refused_naming_the_key_and_both_values(before, after) -> None:
    old, new = before.one(VAULT).inputs, after.one(VAULT).inputs
    assert (input_at(old, RETENTION), input_at(new, RETENTION)) == (7, 30)
    with pytest.raises(ConfigError) as caught:
        engine_calls(the_hook(), old, new)
    text = str(caught.value)
    assert text.startswith("keyVaultSoftDeleteDays: ml-vault was created with 7")
    assert "now says 30" in text and "back to 7" in text
    assert isinstance(caught.value, UsageError), "inside the one error hierarchy"


def test_other_vault_changes_and_the_state_s_float_pass(before) -> None:
    old = before.one(VAULT).inputs
    tagged = {**old, "tags": {"owner": "ops"}}
    engine_calls(the_hook(), old, tagged)  # no error: only the retention is fixed
    as_stored = {**old, "properties": {**old["properties"], "softDeleteRetentionInDays": 7.0}}
    engine_calls(the_hook(), as_stored, old)
