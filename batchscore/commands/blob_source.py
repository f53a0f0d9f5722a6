"""How a command reaches a Blob container: the three ways to sign in, as flags, and the client.

* ``--account-url https://<account>.blob.core.windows.net``: Entra auth through
  ``DefaultAzureCredential`` (the way for real accounts; shared keys are off on the stack's);
* ``--connection-string CS``: Azurite and dev accounts only (it holds a key: never logged);
* ``--connection-string-env [VAR]``: the same, read from an environment variable (default
  :data:`CONNECTION_STRING_ENV`), so it stays out of the shell history.

``batchscore models upload`` and ``batchscore runs`` use it.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from scoring.errors import UsageError

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"


def add_blob_auth(group: argparse._ActionsContainer) -> None:
    """The three sign-in flags, into ``group`` (usually mutually exclusive)."""
    group.add_argument(
        "--account-url",
        metavar="URL",
        help="https://<account>.blob.core.windows.net (Entra auth via DefaultAzureCredential)",
    )
    group.add_argument(
        "--connection-string",
        metavar="CS",
        help="a storage connection string (Azurite/dev only; never logged)",
    )
    group.add_argument(
        "--connection-string-env",
        nargs="?",
        const=CONNECTION_STRING_ENV,
        metavar="VAR",
        help=f"read the connection string from an environment variable "
        f"(default {CONNECTION_STRING_ENV})",
    )


def uses_blob(args: argparse.Namespace) -> bool:
    """Whether the user chose a container (any of the three flags)."""
    return bool(args.account_url or args.connection_string or args.connection_string_env)


def open_container(args: argparse.Namespace, container: str) -> Any:
    """The ``ContainerClient`` the flags ask for; bad flags raise :class:`UsageError`."""
    from batchscore.cloud.blob_sync import BlobSyncError, container_client

    connection_string = args.connection_string
    if args.connection_string_env:
        connection_string = os.environ.get(args.connection_string_env)
        if not connection_string:
            raise UsageError(
                f"--connection-string-env: environment variable {args.connection_string_env} "
                "is not set"
            )
    if args.account_url and not args.account_url.startswith(("https://", "http://")):
        raise UsageError(f"--account-url {args.account_url}: expected https://<account>...")
    try:
        return container_client(
            container, account_url=args.account_url, connection_string=connection_string
        )
    except BlobSyncError as exc:
        if connection_string is None:
            raise  # no usable Azure credential: one line, exit 1
        raise UsageError(f"--connection-string: {exc}") from None
    except ValueError as exc:  # e.g. an invalid container name or URL
        raise UsageError(f"--container {container} / --account-url: {exc}") from None
