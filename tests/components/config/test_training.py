"""TrainingSettings: declared in Pulumi.yaml, validated with one clear error per key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.config import StackSettings
from components.config.errors import ConfigError
from components.config.training import TrainingSettings

ROOT = Path(__file__).resolve().parents[3]


def test_every_key_is_declared_with_its_default_and_a_description() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key in TrainingSettings.config_keys():
        assert key in declared, f"Pulumi.yaml lacks the training key {key}"
        assert len(declared[key].get("description", "")) > 20, key
    assert TrainingSettings.from_stack(None, ROOT) == TrainingSettings()
    for stack in ("dev", "prod"):
        TrainingSettings.from_stack(stack, ROOT)


def test_engine_strings_are_typed() -> None:
    settings = TrainingSettings.from_mapping(
        {"batchscore:trainLookbackDays": "7", "trainScheduleEnabled": "false", "other": 1}
    )
    assert (settings.lookback_days, settings.enabled) == (7, False)
    assert settings.lookback_minutes == 7 * 1440


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainingSettings.from_mapping(
            {"trainCron": "every day", "trainHoldoutPercent": 95, "trainRetrain": "some"}
        )
    message = str(caught.value)
    assert len(caught.value.problems) == 3
    for key in ("trainCron", "trainHoldoutPercent", "trainRetrain"):
        assert key in message
    with pytest.raises(ConfigError, match="trainGateMinRows: must be an integer"):
        TrainingSettings.from_mapping({"trainGateMinRows": "many"})


def test_a_training_run_cannot_ask_for_more_nodes_than_the_cluster_has() -> None:
    with pytest.raises(ConfigError, match="trainInstanceCount: 3 nodes for a training run"):
        StackSettings.from_mapping({"clusterMaxNodes": 2, "trainInstanceCount": 3})
    assert StackSettings.from_mapping({"trainInstanceCount": 2}).training.instance_count == 2
