"""Typed, validated settings of the training pipeline (``train*`` keys of ``Pulumi.yaml``).

The training pipeline retrains every (Device, Sensor) on the cluster on its own schedule,
gates each candidate against the current model (:mod:`scoring.models.promotion`) and writes
the model store's next generation (:mod:`scoring.models.generations`). Its parallel job takes
the scoring job's knobs (concurrency, thresholds, retries, timeout) except its node count.

Every problem names its key and what is allowed, all reported at once in one
:class:`~components.config.errors.ConfigError`. No Pulumi import at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from components.config.errors import ConfigError
from components.config.keyed import KeyedSettings

PROJECT = "batchscore"
RETRAIN_CHOICES = ("all", "needed")  # scoring.steps.train.RETRAIN_CHOICES (the step's flag)


@dataclass(frozen=True)
class TrainingSettings(KeyedSettings):
    """The training pipeline's knobs. ``metadata["key"]`` is the Pulumi.yaml config key."""

    WHAT: ClassVar[str] = "training pipeline settings"

    cron: str = field(default="0 2 * * *", metadata={"key": "trainCron"})
    enabled: bool = field(default=True, metadata={"key": "trainScheduleEnabled"})
    lookback_days: int = field(default=14, metadata={"key": "trainLookbackDays"})
    holdout_percent: int = field(default=20, metadata={"key": "trainHoldoutPercent"})
    retrain: str = field(default="all", metadata={"key": "trainRetrain"})
    generations_to_keep: int = field(default=5, metadata={"key": "trainGenerationsToKeep"})
    gate_min_rows: int = field(default=100, metadata={"key": "trainGateMinRows"})
    gate_max_flag_rate_delta_percent: int = field(
        default=5, metadata={"key": "trainGateMaxFlagRateDeltaPercent"}
    )
    alert_rejected_percent: int = field(default=20, metadata={"key": "trainAlertRejectedPercent"})
    instance_count: int = field(default=1, metadata={"key": "trainInstanceCount"})

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise ConfigError.listing(self.WHAT, problems)

    @property
    def lookback_minutes(self) -> int:
        return self.lookback_days * 1440


def _check(s: TrainingSettings) -> list[str]:
    from croniter import croniter

    problems = []
    if not isinstance(s.cron, str) or len(s.cron.split()) != 5 or not croniter.is_valid(s.cron):
        problems.append(
            f"trainCron: must be a 5-field cron expression like '0 2 * * *' (got {s.cron!r})"
        )
    for name, key, low, high in (
        ("lookback_days", "trainLookbackDays", 1, 365),
        ("holdout_percent", "trainHoldoutPercent", 0, 90),
        ("generations_to_keep", "trainGenerationsToKeep", 1, 100),
        ("gate_min_rows", "trainGateMinRows", 1, 10_000_000),
        ("gate_max_flag_rate_delta_percent", "trainGateMaxFlagRateDeltaPercent", 0, 100),
        ("alert_rejected_percent", "trainAlertRejectedPercent", 0, 100),
        ("instance_count", "trainInstanceCount", 1, 100),
    ):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{key}: must be an integer in {low}..{high} (got {value!r})")
    if s.retrain not in RETRAIN_CHOICES:
        problems.append(
            f"trainRetrain: must be one of {', '.join(RETRAIN_CHOICES)} (got {s.retrain!r})"
        )
    if not isinstance(s.enabled, bool):
        problems.append(f"trainScheduleEnabled: must be true or false (got {s.enabled!r})")
    return problems
