"""Deployed stacks keep working: the providers pickled into their state still load.

Pulumi stores each dynamic resource's provider in the state as a dill pickle that names the
provider's module and class (tests/fixtures/provider-pickles/, recorded before the layout
changed). `pulumi refresh` and `pulumi destroy` rebuild the provider from those bytes in a
fresh provider process exactly as `get_provider` in `pulumi/dynamic/__main__.py` does:
`dill.loads(base64.b64decode(...))`.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.providers.scoring_pipeline import ScoringPipelineProvider
from components.providers.sql_bootstrap import SqlBootstrapProvider
from components.providers.stream_job import StreamJobStartProvider

ROOT = Path(__file__).resolve().parents[2]
PICKLES = ROOT / "tests" / "fixtures" / "provider-pickles"
PROVIDERS = {
    "scoring_pipeline": ScoringPipelineProvider,
    "sql_bootstrap": SqlBootstrapProvider,
    "stream_job": StreamJobStartProvider,
}


def stored(name: str) -> str:
    """The `__provider` value of a stack deployed before the layout changed."""
    return (PICKLES / f"{name}.b64").read_text(encoding="utf-8").strip()


def load_as_pulumi_does(serialized: str):
    return dill.loads(base64.b64decode(serialized))


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_a_stored_provider_loads_as_the_current_provider_class(name: str) -> None:
    provider = load_as_pulumi_does(stored(name))
    assert isinstance(provider, PROVIDERS[name])


def test_the_stored_scoring_pipeline_provider_diffs() -> None:
    provider = load_as_pulumi_does(stored("scoring_pipeline"))
    result = provider.diff("id", {"workspaceName": "mlw-a"}, {"workspaceName": "mlw-b"})
    assert result.changes and result.replaces == ["workspaceName"]


# Inputs each stored provider's check must refuse, and the one key it must name.
BAD_INPUTS = {
    "sql_bootstrap": (
        {
            "serverFqdn": "sql-dev.database.windows.net",
            "database": "sensors",
            "jobIdentityName": "asa-dev",
            "jobIdentityClientId": "00112233-4455-6677-8899-aabbccddeeff",
            "clusterIdentityName": "",
            "clusterIdentityClientId": "8c4f7b1e-2d3a-4e5f-9a6b-7c8d9e0f1a2b",
        },
        "clusterIdentityName",
    ),
    "stream_job": (
        {
            "subscriptionId": "sub",
            "resourceGroupName": "rg",
            "jobName": "asa",
            "startMode": "Now",
            "configHash": "h",
        },
        "startMode",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_a_stored_provider_checks_its_inputs(name: str) -> None:
    news, bad_key = BAD_INPUTS[name]
    result = load_as_pulumi_does(stored(name)).check({}, news)
    assert [f.property for f in result.failures] == [bad_key]


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_a_deployment_stores_the_same_bytes_as_before(name: str) -> None:
    """Same `__provider` input, so no stack's state or plan changes with the code's layout."""
    assert serialize_provider(PROVIDERS[name]()) == stored(name)


def test_the_stored_providers_load_in_a_fresh_interpreter() -> None:
    """The provider host imports the modules the pickles name, starting from nothing."""
    code = (
        "import base64, sys, dill\n"
        "for line in sys.stdin.read().split():\n"
        "    p = dill.loads(base64.b64decode(line))\n"
        "    print(type(p).__name__, callable(p.create))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input="\n".join(stored(name) for name in sorted(PROVIDERS)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "ScoringPipelineProvider", "True",
        "SqlBootstrapProvider", "True",
        "StreamJobStartProvider", "True",
    ]  # fmt: skip


# Providers added after the fixtures were recorded: their first home is their module, so the
# bytes a deployment stores name it (and must keep naming it; see common.pickled_as).
NEW_PROVIDERS = {
    "components.providers.system_identity": "SystemIdentityProvider",
    "components.providers.data_access": "DataAccessWaitProvider",
    "components.providers.published_blob": "PublishedBlobProvider",
}


def test_the_newer_providers_pickle_by_reference_and_load_in_a_fresh_interpreter() -> None:
    import importlib

    blobs = []
    for module, name in NEW_PROVIDERS.items():
        blob = serialize_provider(getattr(importlib.import_module(module), name)())
        assert b"DefaultAzureCredential" not in base64.b64decode(blob), (
            f"{name} pickles a credential"
        )
        blobs.append(blob)
    code = (
        "import base64, sys, dill\n"
        "for line in sys.stdin.read().split():\n"
        "    p = dill.loads(base64.b64decode(line))\n"
        "    print(type(p).__module__, type(p).__name__, callable(p.create))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input="\n".join(blobs),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    expected = [f"{module} {name} True" for module, name in NEW_PROVIDERS.items()]
    assert done.stdout.splitlines() == expected
