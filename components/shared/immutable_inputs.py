"""Settings Azure fixes at creation: a change is refused by name before Azure is asked.

Some properties cannot change once a resource exists, and the provider does not mark them as
forcing a replacement, so a changed config value would plan as an in-place update and fail
half-way through ``pulumi up`` with the service's error. A ``before_update`` resource hook
(run by the engine in the program's process just before the update, never in a preview)
compares the old and new input and stops the update with a :class:`ConfigError` that names
the config key, both values and the way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from components.config.errors import ConfigError


def input_at(inputs: Mapping[str, Any] | None, path: Sequence[str]) -> Any:
    """The value under ``path`` (``("properties", "softDeleteRetentionInDays")``), or None."""
    value: Any = inputs
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, int | float) and isinstance(new, int | float):
        return float(old) == float(new)  # the state may hold 7.0 for 7
    return old == new


def refuse_change_hook(
    name: str, *, path: Sequence[str], config_key: str, reason: str
) -> pulumi.ResourceHook:
    """A ``before_update`` hook refusing any change of the input at ``path`` (set from
    ``config_key``); ``reason`` says why Azure cannot change it, with its source."""

    def refuse(args: pulumi.ResourceHookArgs) -> None:
        old, new = input_at(args.old_inputs, path), input_at(args.new_inputs, path)
        if old is None or new is None or _same(old, new):
            return
        raise ConfigError(
            f"{config_key}: {args.name} was created with {old}, the config now says {new}; "
            f"{reason}. Set {config_key} back to {old}, or create the stack anew to change it"
        )

    return pulumi.ResourceHook(name, refuse)
