"""The one rule a consumer of the batchscore outputs applies: same major contract version.

The stack exports ``outputsContractVersion`` (semantic versioning): within one major version
outputs are only ever added, so code written against 1.0 works with any 1.x; a new major
version removed, renamed or reshaped an output, and this consumer must be reviewed first.
"""

from __future__ import annotations

import re

VERSION_OUTPUT = "outputsContractVersion"
# The contract major version this consumer was written against.
SUPPORTED_MAJOR = 1


class IncompatibleContract(Exception):
    """The stack's outputs follow a contract this consumer was not written for."""


def require_compatible(version: object, supported_major: int = SUPPORTED_MAJOR) -> str:
    """``version`` when its major is ``supported_major``; IncompatibleContract otherwise."""
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", str(version)) if version is not None else None
    if not match:
        raise IncompatibleContract(
            f"{VERSION_OUTPUT} is {version!r}, not a version MAJOR.MINOR.PATCH: is this a "
            "batchscore stack of contract 1.0.0 or later?"
        )
    if int(match.group(1)) != supported_major:
        raise IncompatibleContract(
            f"the stack's outputs contract is {version}, this consumer supports "
            f"{supported_major}.x: review the contract's changes before upgrading"
        )
    return str(version)
