"""Fixtures of the tooling tests: Azurite, a real local Blob endpoint (npm `azurite`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's fixed, publicly documented development account (not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[str]:
    """A running azurite-blob on a free port; yields its connection string."""
    reason = azurite_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Azurite is required in CI: {reason}")
        pytest.skip(reason)
    location = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",  # the OS picks a free port; Azurite prints which
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        endpoint = _wait_for_endpoint(proc, timeout=60)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={endpoint}/{DEV_ACCOUNT};"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def azurite_missing() -> str | None:
    """Why Azurite cannot run here, as the fix (None when it can)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "Azurite needs Node.js with npm: install Node.js 20.6+, then `make node_modules`"
    if not AZURITE.exists():
        return f"{AZURITE.relative_to(ROOT)} is missing: run `make node_modules` (npm ci)"
    return None


def _wait_for_endpoint(proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip())
        match = re.search(r"listens on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return match.group(1)
    raise RuntimeError("azurite-blob did not start: " + " | ".join(seen[-10:]))
