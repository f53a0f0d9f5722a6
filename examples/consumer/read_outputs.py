"""Read the batchscore stack's outputs without Pulumi: the stack-outputs.json it publishes.

    python read_outputs.py --account-url https://<storageAccountName>.blob.core.windows.net
    python read_outputs.py --account-url ... --output predictionsContainerUrl
    python read_outputs.py --account-url ... --schema stack-outputs.schema.json

Signs in with DefaultAzureCredential (az login, a managed identity, or workload identity in
CI); the identity needs Storage Blob Data Reader on the account's `stack-outputs` container.
No key, no SAS. Prints the document (or one output's value) on stdout.

Exit codes: 0 read, 1 the document could not be read (missing, no access, not JSON, not
valid against --schema), 2 bad usage, 3 the outputs follow another major contract version.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compatibility import IncompatibleContract, require_compatible

CONTAINER = "stack-outputs"
BLOB = "stack-outputs.json"
TIMEOUT_SECONDS = 30


class OutputsUnreadable(Exception):
    """The document is missing, forbidden, or not what the contract says."""


def _entra_container(account_url: str, container: str):
    """A ContainerClient signed in with Entra ID, and what to close after."""
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import ContainerClient

    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    client = ContainerClient(
        account_url, container, credential=credential, connection_timeout=TIMEOUT_SECONDS
    )
    return client, [client, credential]


# Module-level hook: the example's tests point it at a local Blob endpoint (Azurite).
CONTAINER_CLIENT: Callable[[str, str], tuple[Any, list[Any]]] = _entra_container


def fetch_document(account_url: str, container: str = CONTAINER, blob: str = BLOB) -> dict:
    """The published outputs as a dict; OutputsUnreadable naming the blob otherwise."""
    from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

    where = f"{account_url.rstrip('/')}/{container}/{blob}"
    client, closables = CONTAINER_CLIENT(account_url, container)
    try:
        data = client.download_blob(blob, timeout=TIMEOUT_SECONDS).readall()
    except ResourceNotFoundError:
        raise OutputsUnreadable(f"{where} does not exist: has the stack been deployed?") from None
    except HttpResponseError as error:
        if error.status_code == 403:
            raise OutputsUnreadable(
                f"{where}: access denied; grant Storage Blob Data Reader on the container"
            ) from None
        raise OutputsUnreadable(f"{where}: HTTP {error.status_code} {error.reason}") from None
    except AzureError as error:
        raise OutputsUnreadable(f"{where}: {type(error).__name__}: {error}") from None
    finally:
        for item in closables:
            item.close()
    try:
        document = json.loads(data)
    except ValueError:
        raise OutputsUnreadable(f"{where} is not JSON") from None
    if not isinstance(document, dict):
        raise OutputsUnreadable(f"{where} is not a JSON object")
    return document


def validate(document: dict, schema_path: Path) -> None:
    """Check ``document`` against the contract's JSON Schema (the copy this team keeps)."""
    import jsonschema

    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(document), key=str)
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(document)"
        raise OutputsUnreadable(f"not valid against {schema_path.name}: {where}: {first.message}")


def read_outputs(account_url: str, schema_path: Path | None = None) -> dict:
    """The stack's outputs, checked: same major contract version, and the schema if given."""
    document = fetch_document(account_url)
    require_compatible(document.get("outputsContractVersion"))
    if schema_path is not None:
        validate(document, schema_path)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Read the batchscore stack's published outputs (stack-outputs.json)."
    )
    parser.add_argument(
        "--account-url",
        required=True,
        help="https://<storageAccountName>.blob.core.windows.net of the batchscore stack",
    )
    parser.add_argument("--output", help="print only this output's value")
    parser.add_argument("--schema", type=Path, help="also validate against this JSON Schema")
    args = parser.parse_args(argv)
    if args.schema is not None and not args.schema.is_file():
        print(f"error: --schema {args.schema}: no such file", file=sys.stderr)
        return 2
    try:
        outputs = read_outputs(args.account_url, args.schema)
    except OutputsUnreadable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except IncompatibleContract as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    if args.output is None:
        print(json.dumps(outputs, indent=2, sort_keys=True))
    elif args.output in outputs:
        print(outputs[args.output])
    else:
        print(f"error: --output {args.output}: the stack has no such output", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
