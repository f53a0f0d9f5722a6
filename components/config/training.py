"""Typed, validated settings of the training pipeline (``train*`` keys of ``Pulumi.yaml``).

The training pipeline retrains every (Device, Sensor) on the cluster on its own schedule,
gates each candidate against the current model (:mod:`scoring.models.promotion`) and writes
the model store's next generation (:mod:`scoring.models.generations`). Its parallel job takes
the scoring job's knobs (concurrency, thresholds, retries, timeout) except its node count.

Every problem names its key and what is allowed, all reported at once in one
:class:`~components.config.errors.ConfigError`. No Pulumi import at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from components.config.errors import ConfigError
from components.config.files import coerce
from components.config.files import read_stack_config as read_stack_files

PROJECT = "batchscore"
RETRAIN_CHOICES = ("all", "needed")  # scoring.steps.train.RETRAIN_CHOICES (the step's flag)


@dataclass(frozen=True)
class TrainingSettings:
    """The training pipeline's knobs. ``metadata["key"]`` is the Pulumi.yaml config key."""

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
            raise ConfigError.listing("training pipeline settings", problems)

    @property
    def lookback_minutes(self) -> int:
        return self.lookback_days * 1440

    @classmethod
    def config_keys(cls) -> dict[str, str]:
        """Pulumi.yaml config key -> field name."""
        return {f.metadata["key"]: f.name for f in fields(cls)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainingSettings:
        """From ``{configKey: value}`` (typed, or the engine's strings); other keys ignored."""
        by_key = cls.config_keys()
        kinds = {f.name: _KINDS[type(f.default)] for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        problems = []
        for raw_key, value in values.items():
            key = raw_key.split(":", 1)[1] if raw_key.startswith(f"{PROJECT}:") else raw_key
            name = by_key.get(key)
            if name is None or value is None:
                continue
            try:
                kwargs[name] = coerce(value, kinds[name])
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
        if problems:
            raise ConfigError.listing("training pipeline settings", problems)
        return cls(**kwargs)

    @classmethod
    def from_stack(cls, stack: str | None, project_dir: str | Path) -> TrainingSettings:
        """``Pulumi.yaml`` defaults overridden by ``Pulumi.<stack>.yaml`` (if ``stack``)."""
        return cls.from_mapping(read_stack_files(stack, project_dir))

    @classmethod
    def from_pulumi(cls, config: Any = None) -> TrainingSettings:
        import pulumi

        config = config or pulumi.Config()
        values = {key: config.get(key) for key in cls.config_keys()}
        return cls.from_mapping({k: v for k, v in values.items() if v is not None})

    def to_mapping(self) -> dict[str, Any]:
        """``{configKey: value}``: the form stored as the dynamic resource's input."""
        by_name = {f.name: f.metadata["key"] for f in fields(self)}
        return {by_name[name]: value for name, value in asdict(self).items()}


_KINDS = {bool: "boolean", int: "integer", str: "string"}


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
