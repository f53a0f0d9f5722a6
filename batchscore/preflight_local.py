"""Preflight checks of the machine that runs `pulumi up` (no Azure call).

* **Docker with buildx**: the ScoringImage component builds the scoring image with
  ``pulumi-docker-build``, which drives Docker's BuildKit through buildx; without a running
  Docker and its buildx plugin ``pulumi up`` fails at the image (``docker buildx version``
  answers when both are there).
* **SQL firewall from a laptop**: the SQL bootstrap connects to the new server from this
  machine. The firewall always allows Azure's own addresses ("Allow Azure services"), which
  covers GitHub's hosted runners; anywhere else (a laptop, an office network) the machine's
  public address must be in ``sqlFirewallIpRanges``, or the server refuses the connection
  half-way through ``pulumi up``. Which side of that line this machine is on comes from the
  CI markers GitHub Actions and most CI systems set (``GITHUB_ACTIONS``, ``CI``).

The probes are module-level so tests replace them with recording fakes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping

from batchscore.preflight import Check, Target

DOCKER_TIMEOUT_SECONDS = 20.0


def probe_buildx() -> str | None:
    """Why ``docker buildx`` cannot build here (None when it can): one bounded call."""
    if not shutil.which("docker"):
        return "docker is not on PATH"
    try:
        done = subprocess.run(
            ["docker", "buildx", "version"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker buildx version` did not answer ({type(exc).__name__})"
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"`docker buildx version` failed: {last[0][:200]}"
    return None


# Module-level hooks: tests swap in fakes.
BUILDX_PROBE: Callable[[], str | None] = probe_buildx
ENVIRON: Mapping[str, str] = os.environ


def in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true" or environ.get("CI", "").lower() == "true"


def check_buildx() -> Check:
    problem = BUILDX_PROBE()
    if problem is None:
        return Check("Docker buildx", True, "docker buildx answers: the scoring image can build")
    return Check(
        "Docker buildx",
        False,
        f"{problem}; `pulumi up` builds the scoring image with Docker's buildx",
        [
            "install and start Docker (Docker Desktop ships buildx; on Linux also the "
            "docker-buildx-plugin package), then `docker buildx version`"
        ],
    )


def check_sql_firewall(target: Target, environ: Mapping[str, str]) -> Check:
    ranges = target.config.sql_firewall_ip_ranges
    if ranges:
        return Check("SQL firewall", True, f"{len(ranges)} client range(s) allowed")
    if in_ci(environ):
        return Check(
            "SQL firewall",
            True,
            "no client ranges; CI runners reach the server as Azure services",
        )
    return Check(
        "SQL firewall",
        False,
        "sqlFirewallIpRanges is empty and this machine is not a CI runner: the SQL bootstrap "
        "connects from here and the server would refuse it",
        [
            f"pulumi config set --path 'sqlFirewallIpRanges[0]' <this machine's public IPv4> "
            f"--stack {target.stack}   (e.g. from `curl -s https://api.ipify.org`)",
            "or deploy from CI",
        ],
    )


def run_local_checks(target: Target) -> list[Check]:
    return [check_buildx(), check_sql_firewall(target, ENVIRON)]
