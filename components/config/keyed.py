"""Settings whose fields are Pulumi config keys: the one way a settings dataclass is read from
a mapping, the stack files or the running program, and written back as the dynamic
resource's input. Each field names its key in ``metadata["key"]`` and takes the type of its
default (a bool, an int or a string); the subclass names what it is in ``WHAT`` for its
errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, Self

from components.config.errors import ConfigError
from components.config.files import StackFileError, coerce
from components.config.files import read_stack_config as read_stack_files

PROJECT = "batchscore"
_KINDS = {bool: "boolean", int: "integer", str: "string"}


def read_stack_config(stack: str | None, project_dir: str | Path) -> dict[str, Any]:
    """``{key: typed value}``: Pulumi.yaml defaults, then ``Pulumi.<stack>.yaml`` overrides,
    read by the project's one stack-file reader (:mod:`components.config.files`); a stack
    without its file is named as such."""
    root = Path(project_dir)
    if stack and not (root / f"Pulumi.{stack}.yaml").is_file():
        raise StackFileError(f"stack {stack!r}: no stack file Pulumi.{stack}.yaml in {root}")
    return read_stack_files(stack, root)


class KeyedSettings:
    """Mixin of a frozen settings dataclass whose fields carry their config key."""

    WHAT: ClassVar[str] = "settings"

    @classmethod
    def config_keys(cls) -> dict[str, str]:
        """Pulumi.yaml config key -> field name."""
        return {f.metadata["key"]: f.name for f in fields(cls)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """Settings from ``{configKey: value}``; missing keys take the defaults.

        Keys may carry the project namespace (``batchscore:scheduleCron``); keys that are not
        these settings' are ignored (the stack's other keys live beside them). Values are
        coerced the way Pulumi config arrives: ``"30"`` and ``30.0`` are 30, ``"true"`` is True.
        Every wrong value is reported at once in one :class:`ConfigError`.
        """
        by_key = cls.config_keys()
        kinds = {f.name: _KINDS[type(f.default)] for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        problems: list[str] = []
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
            raise ConfigError.listing(cls.WHAT, problems)
        return cls(**kwargs)

    @classmethod
    def from_stack(cls, stack: str | None, project_dir: str | Path) -> Self:
        """``Pulumi.yaml`` defaults overridden by ``Pulumi.<stack>.yaml`` (if ``stack``)."""
        return cls.from_mapping(read_stack_config(stack, project_dir))

    @classmethod
    def from_pulumi(cls, config: Any = None) -> Self:
        """The keys of the running program's config (``pulumi.Config()`` unless given):
        Pulumi applies the Pulumi.yaml defaults; keys it does not know fall back to the same
        defaults here."""
        import pulumi

        config = config or pulumi.Config()
        values = {key: config.get(key) for key in cls.config_keys()}
        return cls.from_mapping({k: v for k, v in values.items() if v is not None})

    def to_mapping(self) -> dict[str, Any]:
        """``{configKey: value}``: the form stored as the dynamic resource's input."""
        by_name = {f.name: f.metadata["key"] for f in fields(self)}
        return {by_name[name]: value for name, value in asdict(self).items()}
