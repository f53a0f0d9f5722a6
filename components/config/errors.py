"""The one error of the stack's configuration, inside the product's error hierarchy.

Every layer that reads config (the stack files, the infrastructure knobs, the pipeline
settings, the alerting settings) raises :class:`ConfigError`; the Pulumi program turns it into
a ``RunError`` and the command line into exit code 2, each once. Nothing re-wraps it.
"""

from __future__ import annotations

from collections.abc import Iterable

from scoring.errors import UsageError


class ConfigError(UsageError, ValueError):
    """One or more config values are wrong: the message names each key and what is allowed.

    ``ConfigError("one problem")`` reads as that line; ``ConfigError.listing(what, problems)``
    names what was being read and every problem found, on one line (the command line prints
    errors as one line); ``problems`` keeps them apart.
    """

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]

    @classmethod
    def listing(cls, what: str, problems: Iterable[str]) -> ConfigError:
        """One error for every problem found reading ``what``, all reported at once."""
        found = list(problems)
        if len(found) == 1:
            return cls(f"invalid {what}: {found[0]}", found)
        return cls(f"invalid {what} ({len(found)} problem(s)): " + "; ".join(found), found)
