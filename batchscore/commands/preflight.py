"""``batchscore preflight --stack STACK``: before `pulumi up`, check what would stop it.

Run it as the identity that will deploy (``az login`` as yourself, or CI's workload
identity): it signs in with the providers' credential (``default_credential``), reads the
stack's config (``Pulumi.yaml`` + ``Pulumi.<stack>.yaml``) and checks the subscription,
region, roles, Azure ML quota, the SQL admin, who deployed the stack before, this machine's
Docker buildx and SQL firewall entry, and with ``networkIsolation`` the private network's
region, the one-way managed network, the line of sight to the private endpoints and the
private endpoint connections waiting for approval (:mod:`batchscore.preflight`). Each check
prints ok, WARN or FAILED with the command that fixes it. Exit codes: 0 every check passed
(warnings included), 1 at least one failed (or Azure could not be reached), 2 bad usage
(unknown stack, invalid config, no subscription, an unreadable --outputs file).

The subscription is ``--subscription``, else ``ARM_SUBSCRIPTION_ID`` (what the Pulumi
azure-native provider reads, set in CI), else ``AZURE_SUBSCRIPTION_ID``.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scoring.errors import EXIT_FAILED, EXIT_OK, RunFailed, UsageError

SUBSCRIPTION_VARIABLES = ("ARM_SUBSCRIPTION_ID", "AZURE_SUBSCRIPTION_ID")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _default_credential() -> Any:
    from components.providers.common import default_credential

    return default_credential()


def _default_arm(credential: Any) -> Any:
    from components.providers.arm_rest import ArmReader

    return ArmReader(credential)


# Module-level hooks: tests swap in recording fakes.
CREDENTIAL_FACTORY: Callable[[], Any] = _default_credential
ARM_FACTORY: Callable[[Any], Any] = _default_arm


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="the stack to check (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--subscription",
        metavar="ID",
        help=f"subscription to deploy to (default: ${' or $'.join(SUBSCRIPTION_VARIABLES)})",
    )
    parser.add_argument(
        "--resource-group",
        metavar="NAME",
        help="the stack's resource group, if it exists already (a role granted there counts)",
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="the stack's outputs as JSON (`pulumi stack output --json --stack STACK > FILE`): "
        "with networkIsolation, the private endpoints to test the line of sight to",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="folder holding Pulumi.yaml (default: this folder or the nearest one above it "
        "that has one)",
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from batchscore import preflight, preflight_local
    from components.config import StackConfig
    from components.config.files import find_project_dir, read_stack_config, stack_names
    from components.providers.arm_rest import ARM_SCOPE

    args.project_dir = args.project_dir or find_project_dir()
    if args.stack not in stack_names(args.project_dir):
        raise UsageError(
            f"--stack {args.stack}: no Pulumi.{args.stack}.yaml in {args.project_dir} "
            f"(stacks: {', '.join(stack_names(args.project_dir)) or 'none'})"
        )
    config = StackConfig.from_mapping(read_stack_config(args.stack, args.project_dir))
    target = preflight.Target(
        args.stack,
        _subscription(args.subscription),
        config,
        args.resource_group,
        _outputs(args.outputs),
    )

    # The SDKs' request logs and credential-chain warnings would bury the report; a failure
    # to sign in is reported below in one line.
    logging.getLogger("azure").setLevel(logging.ERROR)
    credential = CREDENTIAL_FACTORY()
    try:
        try:
            token = credential.get_token(ARM_SCOPE).token
        except Exception as exc:
            raise RunFailed(
                f"cannot sign in to Azure ({type(exc).__name__}): run `az login` as the "
                "identity that deploys, or give this machine a workload identity"
            ) from exc
        try:
            deployer = preflight.deployer_from_token(token)
        except preflight.PreflightError as exc:
            raise RunFailed(str(exc)) from exc
        checks = preflight.run_checks(ARM_FACTORY(credential), target, deployer)
    finally:
        close = getattr(credential, "close", None)
        if callable(close):
            close()
    checks += preflight_local.run_local_checks(target)  # this machine: Docker, SQL firewall
    print(preflight.report(checks, target, deployer))
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED


def _outputs(path: Path | None) -> dict[str, Any] | None:
    """The stack outputs file of --outputs, or None; a file that is not a JSON object of
    outputs is a usage error naming it."""
    if path is None:
        return None
    import json

    try:
        outputs = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--outputs {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise UsageError(f"--outputs {path}: not JSON ({exc})") from None
    if not isinstance(outputs, dict):
        raise UsageError(
            f"--outputs {path}: expected the object `pulumi stack output --json` prints"
        )
    return outputs


def _subscription(flag: str | None) -> str:
    candidates = [("--subscription", flag)] + [
        (f"${v}", os.environ.get(v)) for v in SUBSCRIPTION_VARIABLES
    ]
    for where, value in candidates:
        if value:
            if not _GUID.match(value.strip()):
                raise UsageError(f"{where}: {value!r} is not a subscription id (a GUID)")
            return value.strip()
    raise UsageError(
        "no subscription: pass --subscription ID or set ARM_SUBSCRIPTION_ID "
        "(`az account show --query id -o tsv` prints the current one)"
    )
