"""KQL checked offline by Microsoft's own parser: ``kusto_check.js`` runs Kusto.Language
(npm ``@kusto/language-service-next``, pinned in package.json) under Node and returns every
diagnostic of parsing and binding each query against the tables of
:data:`components.shared.log_tables.LOG_TABLES` (their columns and types from the Azure
Monitor table reference).

Without Node or ``node_modules`` the tests that need it skip with the fix; in CI they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.shared.log_tables import LogTable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("kusto_check.js")
PACKAGE = ROOT / "node_modules" / "@kusto" / "language-service-next"


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    code: str
    message: str
    start: int
    length: int

    def __str__(self) -> str:
        return f"{self.severity} {self.code} at {self.start}: {self.message}"


def missing() -> str | None:
    """Why the parser cannot run here, as the fix (None when it can)."""
    if not shutil.which("node"):
        return "the Kusto parser needs Node.js: install Node.js 20.6+, then `make node_modules`"
    if not PACKAGE.exists():
        return f"{PACKAGE.relative_to(ROOT)} is missing: run `make node_modules` (npm ci)"
    return None


def require_parser() -> None:
    reason = missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Kusto parser is required in CI: {reason}")
        pytest.skip(reason)


def analyze(
    tables: Iterable[LogTable], queries: Mapping[str, str], timeout: float = 120.0
) -> dict[str, list[Diagnostic]]:
    """Every diagnostic of every query (name -> text), bound against ``tables``."""
    request = {
        "tables": [{"name": t.name, "schema": t.kusto_schema} for t in tables],
        "queries": [{"name": name, "text": text} for name, text in queries.items()],
    }
    done = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kusto_check.js failed ({done.returncode}): {done.stderr[-2000:]}")
    return {
        name: [Diagnostic(**d) for d in found] for name, found in json.loads(done.stdout).items()
    }
