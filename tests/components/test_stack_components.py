"""Components in-process under Pulumi mocks, plus the pure helpers they use.

The component modules declare nothing at import, so the mocks are installed per test (the
mock runtime is process-global and other test modules install their own); the config they
set is cleared afterwards so it cannot leak into other modules.
"""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pytest

from components.config import ConfigError, StackConfig
from components.offline import mocks
from components.shared import registry_auth
from components.shared.hashing import stable_hash
from components.shared.placement import Placement
from components.shared.stream_query import render_query
from components.storage import Storage, StorageArgs
from components.stream_processing import StreamProcessing, StreamProcessingArgs
from tests.components.stream_args import LOGS, PLACE, stream_args

CONFIG = {"batchscore:clusterMaxNodes": "6", "batchscore:sqlFirewallIpRanges": '["203.0.113.7"]'}


@pytest.fixture(autouse=True)
def offline_runtime():
    yield mocks.install("batchscore", "unit", CONFIG)
    pulumi.runtime.set_all_config({})


# --- components under mocks --------------------------------------------------------------------
@pulumi.runtime.test
def test_storage_exposes_names_ids_and_container_urls():
    storage = Storage(
        "storage",
        StorageArgs(
            PLACE,
            "stbatchscoreunit1a2b3c",
            "Standard_LRS",
            7,
            LOGS,
            subscription_id=mocks.SUBSCRIPTION_ID,
            deployer_object_id=mocks.DEPLOYER_OBJECT_ID,
        ),
    )

    def check(values):
        name, urls, raw_id = values
        assert name == "stbatchscoreunit1a2b3c"
        assert urls == {
            c: f"https://stbatchscoreunit1a2b3c.blob.core.windows.net/{c}"
            for c in ("raw", "models", "predictions", "stack-outputs")
        }
        assert raw_id.endswith(
            "/storageAccounts/stbatchscoreunit1a2b3c/blobServices/default/containers/raw"
        )
        assert storage.container_names == {
            "raw": "raw",
            "models": "models",
            "predictions": "predictions",
            "stack-outputs": "stack-outputs",
        }

    return pulumi.Output.all(
        storage.account_name,
        pulumi.Output.all(**storage.container_urls),
        storage.container_ids["raw"],
    ).apply(check)


def _definition_hash(args: StreamProcessingArgs) -> str:
    query = render_query(
        window_minutes=args.window_minutes,
        input_name="sensor-readings",
        output_name="sensor-database",
        timestamp_field="EventTime",
    )
    return stable_hash(StreamProcessing.definition(args, query))


# Every knob that reaches the job, its input or its output (a change updates one of them).
DEFINITION_KNOBS = {
    "window_minutes": 30,
    "streaming_units": 6,
    "events_out_of_order_policy": "Drop",
    "events_out_of_order_max_delay_seconds": 9,
    "events_late_arrival_max_delay_seconds": 120,
    "output_error_policy": "Drop",
    "event_hubs_namespace_name": "evhns-y",
    "event_hub_name": "other-hub",
    "consumer_group_name": "other-group",
    "sql_server_fqdn": "sql-y.database.windows.net",
    "sql_database_name": "other",
    "placement": Placement("rg-unit", "westeurope", {"environment": "other"}),
    # Private networking moves the job onto its cluster (the job's `cluster`).
    "network_isolation": True,
}


@pytest.mark.parametrize("knob", sorted(DEFINITION_KNOBS))
def test_every_definition_knob_changes_the_restart_hash(knob):
    assert _definition_hash(stream_args(**{knob: DEFINITION_KNOBS[knob]})) != _definition_hash(
        stream_args()
    ), f"changing {knob} would update the job but not restart it"


def test_every_stream_argument_is_classified_for_the_restart_hash():
    """A new argument must join DEFINITION_KNOBS or be shown to reach no stream resource."""
    outside = {"event_hub_id", "subscription_id", "log_analytics_workspace_id"}
    # The targets of the cluster's managed private endpoints: separate resources, not the
    # job, its input or its output.
    outside |= {"event_hubs_namespace_id", "sql_server_id"}
    fields = {f.name for f in dataclasses.fields(StreamProcessingArgs)}
    assert fields == set(DEFINITION_KNOBS) | outside


def test_what_reaches_no_stream_resource_leaves_the_hash_alone():
    assert _definition_hash(
        stream_args(event_hub_id="/other", log_analytics_workspace_id="/l2")
    ) == (_definition_hash(stream_args()))
    private = {"network_isolation": True, "event_hubs_namespace_id": "/ns", "sql_server_id": "/s"}
    assert _definition_hash(
        stream_args(**{**private, "event_hubs_namespace_id": "/ns2", "sql_server_id": "/s2"})
    ) == _definition_hash(stream_args(**private))


@pulumi.runtime.test
def test_stream_processing_exposes_what_the_post_deploy_steps_need():
    stream = StreamProcessing("stream", stream_args())
    assert "TumblingWindow(minute, 15)" in stream.query
    assert stream.table_name == "SensorReadings"

    def check(values):
        name, job_id, principal, config_hash = values
        assert config_hash == _definition_hash(stream_args()), "the hash is not the definition's"
        assert name.startswith("stream-job")
        assert job_id.endswith(f"/streamingjobs/{name}")
        expected = mocks.OfflineMocks("batchscore", "unit").principal_id(
            "azure-native:streamanalytics:StreamingJob", "stream-job"
        )
        assert principal == expected

    return pulumi.Output.all(
        stream.job_name, stream.job_id, stream.principal_id, stream.config_hash
    ).apply(check)


@pulumi.runtime.test
def test_registry_password_is_a_secret_from_the_exchange():
    calls = []

    def fake(login_server: str, tenant: str, token: str) -> str:
        calls.append((login_server, tenant, token))
        return "refresh-123"

    with registry_auth.use_exchanger(fake):
        password = registry_auth.registry_password("cr1.azurecr.io", "tenant-1", "entra-abc")
        secret = pulumi.Output.all(password.is_secret(), password.future())

    def check(values):
        is_secret, value = values
        assert is_secret is True
        assert value == "refresh-123"
        assert calls == [("cr1.azurecr.io", "tenant-1", "entra-abc")]

    return pulumi.Output.from_input(secret).apply(check)


def test_config_is_read_from_the_engine_strings() -> None:
    config = StackConfig.from_pulumi()
    assert config.cluster_max_nodes == 6
    assert config.sql_firewall_ranges == [("203.0.113.7", "203.0.113.7")]


def test_config_errors_from_the_engine_name_the_key() -> None:
    mocks.install("batchscore", "unit", {"batchscore:clusterMaxNodes": "-4"})
    with pytest.raises(ConfigError, match="clusterMaxNodes: -4 is out of range"):
        StackConfig.from_pulumi()


# --- the ACR token exchange ---------------------------------------------------------------------
def test_exchange_posts_the_entra_token_and_returns_the_refresh_token() -> None:
    seen = {}

    def post(url, form):
        seen.update(url=url, form=form)
        return 200, json.dumps({"refresh_token": "acr-refresh"}).encode()

    token = registry_auth.exchange_for_refresh_token(
        "cr1.azurecr.io", "tenant-1", "entra", post=post
    )
    assert token == "acr-refresh"
    assert seen["url"] == "https://cr1.azurecr.io/oauth2/exchange"
    assert seen["form"] == {
        "grant_type": "access_token",
        "service": "cr1.azurecr.io",
        "tenant": "tenant-1",
        "access_token": "entra",
    }


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((401, b'{"errors": []}'), "refused the token exchange (HTTP 401)"),
        ((200, b"not json"), "without a refresh_token"),
        ((200, b'{"access_token": "x"}'), "without a refresh_token"),
    ],
)
def test_exchange_failures_name_the_registry_and_never_the_token(answer, message) -> None:
    with pytest.raises(registry_auth.AcrTokenExchangeError) as caught:
        registry_auth.exchange_for_refresh_token(
            "cr1.azurecr.io", "t", "secret-entra-token", post=lambda url, form: answer
        )
    assert message in str(caught.value) and "cr1.azurecr.io" in str(caught.value)
    assert "secret-entra-token" not in str(caught.value)


def test_exchange_network_errors_and_bad_hosts_are_named() -> None:
    def unreachable(url, form):
        raise OSError("connection refused")

    with pytest.raises(registry_auth.AcrTokenExchangeError, match="cr1.azurecr.io failed"):
        registry_auth.exchange_for_refresh_token("cr1.azurecr.io", "t", "x", post=unreachable)
    with pytest.raises(registry_auth.AcrTokenExchangeError, match="not a host name"):
        registry_auth.exchange_for_refresh_token("https://cr1.azurecr.io/", "t", "x")


# --- the query template -------------------------------------------------------------------------
def test_query_is_rendered_from_the_template() -> None:
    query = render_query(window_minutes=10, input_name="in-1", output_name="out_1")
    assert "$" not in query and "--" not in query
    assert "FROM\n    [in-1] TIMESTAMP BY [EventTime]" in query
    assert "INTO\n    [out_1]" in query
    assert "TumblingWindow(minute, 10)" in query
    for column in (
        "[TS]",
        "[Device]",
        "[Sensor]",
        "[Value]",
        "[MinValue]",
        "[MaxValue]",
        "[Count]",
    ):
        assert f"AS {column}" in query
    assert "GROUP BY\n    [Device],\n    [Sensor]," in query


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_minutes": 0}, "window_minutes must be at least 1"),
        ({"window_minutes": "5"}, "window_minutes must be an integer"),
        ({"input_name": "in]; DROP"}, "input_name"),
        ({"output_name": ""}, "output_name"),
    ],
)
def test_bad_query_arguments_are_named(kwargs, message) -> None:
    arguments = {"window_minutes": 5, "input_name": "in", "output_name": "out", **kwargs}
    with pytest.raises(ValueError, match=message):
        render_query(**arguments)
