"""Stack config: the typed schema in Pulumi.yaml, the dev/prod files, and validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import ConfigError, StackConfig
from components.config.files import load_project, read_stack_config
from components.config.stack import iso8601_seconds, sql_sku_parts

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = load_project(ROOT)["config"]
YAML_TYPES = {bool: "boolean", int: "integer", str: "string", list: "array"}


def stack_values(stack: str) -> dict:
    """The stack's batchscore keys, without the namespace: the defaults under the stack file."""
    return read_stack_config(stack, ROOT)


def stack_config(stack: str) -> StackConfig:
    return StackConfig.from_mapping(stack_values(stack))


# --- the schema ------------------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(StackConfig.keys()))
def test_every_infrastructure_key_is_declared_with_type_default_and_description(key: str) -> None:
    assert key in SCHEMA, f"{key} is read by components/config.py but missing from Pulumi.yaml"
    spec = SCHEMA[key]
    default = StackConfig.defaults()[key]
    assert spec.get("type") == YAML_TYPES[type(default)], f"{key}: type {spec.get('type')}"
    assert spec.get("default") == default, f"{key}: Pulumi.yaml default differs from config.py"
    assert len(str(spec.get("description", ""))) > 20, f"{key}: needs a description"
    if spec["type"] == "array":
        assert spec.get("items") == {"type": "string"}, f"{key}: array items must be typed"


def test_the_pipeline_keys_are_left_alone() -> None:
    pipeline_keys = {"scheduleCron", "lookbackMinutes", "appendRows", "scoringInstanceCount"}
    assert pipeline_keys <= set(SCHEMA), "the pipeline engineer's keys must stay in Pulumi.yaml"
    assert not pipeline_keys & set(StackConfig.keys())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_only_use_declared_keys_and_validate(stack: str) -> None:
    values = stack_values(stack)
    undeclared = sorted(set(values) - set(SCHEMA))
    assert not undeclared, f"Pulumi.{stack}.yaml sets undeclared keys {undeclared}"
    stack_config(stack)  # raises ConfigError naming the key if a value is bad


def test_defaults_are_valid() -> None:
    assert StackConfig.from_mapping({}) == StackConfig()


# --- dev and prod differ for real -------------------------------------------------------------
def test_dev_is_small_and_scales_to_zero() -> None:
    dev = stack_config("dev")
    assert dev.cluster_min_nodes == 0
    assert dev.sql_is_serverless and dev.sql_auto_pause_delay_minutes > 0
    assert not dev.protect_data
    assert dev.storage_sku == "Standard_LRS" and dev.registry_sku == "Basic"


def test_prod_is_sized_zone_redundant_protected_and_retained_longer() -> None:
    dev, prod = stack_config("dev"), stack_config("prod")
    assert prod.protect_data
    assert prod.cluster_max_nodes > dev.cluster_max_nodes
    assert prod.event_hubs_capacity > dev.event_hubs_capacity
    assert prod.event_hub_partition_count > dev.event_hub_partition_count
    assert prod.event_hubs_zone_redundant and prod.sql_zone_redundant
    assert prod.registry_zone_redundant and prod.registry_sku == "Premium"
    assert "ZRS" in prod.storage_sku
    assert not prod.sql_is_serverless and prod.sql_auto_pause_delay_minutes == -1
    for field in (
        "log_retention_days",
        "event_hub_retention_hours",
        "blob_soft_delete_days",
        "key_vault_soft_delete_days",
    ):
        assert getattr(prod, field) > getattr(dev, field), f"prod must keep {field} longer"


# --- bad values fail, naming the key -----------------------------------------------------------
BAD_VALUES = [
    ({"clusterMaxNodes": -1}, "clusterMaxNodes", "1..100"),
    ({"clusterMinNodes": -2}, "clusterMinNodes", "0..100"),
    ({"clusterMinNodes": 5, "clusterMaxNodes": 3}, "clusterMinNodes", "above clusterMaxNodes"),
    ({"clusterIdleTimeBeforeScaleDown": "120s"}, "clusterIdleTimeBeforeScaleDown", "ISO-8601"),
    ({"clusterIdleTimeBeforeScaleDown": "PT"}, "clusterIdleTimeBeforeScaleDown", "ISO-8601"),
    ({"clusterIdleTimeBeforeScaleDown": "PT0S"}, "clusterIdleTimeBeforeScaleDown", "positive"),
    ({"clusterVmPriority": "Spot"}, "clusterVmPriority", "Dedicated, LowPriority"),
    ({"clusterVmSize": "DS3_v2"}, "clusterVmSize", "Standard_DS3_v2"),
    ({"sqlSku": "GP_S_Gen9_1"}, "sqlSku", "GP_S_Gen5_1"),
    ({"storageSku": "Premium_LRS"}, "storageSku", "Standard_ZRS"),
    ({"registrySku": "Classic"}, "registrySku", "Premium"),
    ({"registryZoneRedundant": True}, "registryZoneRedundant", "Premium"),
    ({"sqlSku": "GP_Gen5_2", "sqlAutoPauseDelayMinutes": 60}, "sqlAutoPauseDelayMinutes", "-1"),
    ({"sqlAutoPauseDelayMinutes": 5}, "sqlAutoPauseDelayMinutes", "15..10080"),
    ({"sqlAdminObjectId": "not-a-guid", "sqlAdminLogin": "x"}, "sqlAdminObjectId", "GUID"),
    ({"sqlAdminLogin": "dba-group"}, "sqlAdminLogin", "both"),
    ({"sqlAdminPrincipalType": "Robot"}, "sqlAdminPrincipalType", "Group"),
    ({"sqlAdminPrincipalType": "Group"}, "sqlAdminPrincipalType", "needs sqlAdminObjectId"),
    ({"sqlFirewallIpRanges": ["10.0.0.300"]}, "sqlFirewallIpRanges[0]", "IPv4"),
    ({"sqlFirewallIpRanges": ["10.0.0.9-10.0.0.1"]}, "sqlFirewallIpRanges[0]", "below"),
    ({"sqlFirewallIpRanges": "10.0.0.1"}, "sqlFirewallIpRanges", "list of strings"),
    ({"eventHubPartitionCount": 0}, "eventHubPartitionCount", "1..32"),
    ({"eventHubRetentionHours": 169}, "eventHubRetentionHours", "1..168"),
    ({"captureIntervalSeconds": 30}, "captureIntervalSeconds", "60..900"),
    ({"streamingUnits": 4}, "streamingUnits", "multiple of 6"),
    ({"streamWindowMinutes": 0}, "streamWindowMinutes", "1..1440"),
    ({"eventsOutOfOrderPolicy": "Keep"}, "eventsOutOfOrderPolicy", "Adjust, Drop"),
    ({"outputErrorPolicy": "Retry"}, "outputErrorPolicy", "Drop, Stop"),
    ({"logRetentionDays": 7}, "logRetentionDays", "30..730"),
    ({"keyVaultSoftDeleteDays": 100}, "keyVaultSoftDeleteDays", "7..90"),
    ({"location": "West Europe"}, "location", "region"),
    ({"imageRepository": "Scoring Image"}, "imageRepository", "lowercase"),
    ({"eventHubsCapacity": "two"}, "eventHubsCapacity", "must be an integer"),
    ({"protectData": "yes"}, "protectData", "true or false"),
    ({"alertEmails": ["ops.example.com"]}, "alertEmails[0]", "not an email address"),
    ({"alertEmails": ["a@x.org", "A@x.org"]}, "alertEmails", "listed twice"),
    ({"alertEmails": "ops@example.com"}, "alertEmails", "list of strings"),
    ({"alertWebhookUrl": "http://hooks.example.com/x"}, "alertWebhookUrl", "https://"),
    ({"alertEvaluationMinutes": 1}, "alertEvaluationMinutes", "5, 10, 15, 30, 45, 60"),
    # a log alert's window must be one Azure takes (azure-rest-api-specs#21258)
    ({"alertEvaluationMinutes": 20}, "alertEvaluationMinutes", "240, 300, 360"),
    ({"alertEvaluationMinutes": 1440}, "alertEvaluationMinutes", "360"),
    ({"alertFailedPairsPercent": 101}, "alertFailedPairsPercent", "0..100"),
    ({"alertDriftedPairsPercent": -1}, "alertDriftedPairsPercent", "0..100"),
    ({"alertNoInputMinutes": 3000}, "alertNoInputMinutes", "1440, 2880"),
    ({"alertNoInputMinutes": 90}, "alertNoInputMinutes", "60, 120"),
    ({"alertIngestionStallMinutes": 25}, "alertIngestionStallMinutes", "15, 30"),
    (
        {"alertIngestionStallMinutes": 15, "streamWindowMinutes": 10},
        "alertIngestionStallMinutes",
        "at least 20",
    ),
    ({"alertSeverityStream": 5}, "alertSeverityStream", "0, 1, 2, 3, 4"),
]


@pytest.mark.parametrize(("values", "key", "allowed"), BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_bad_value_fails_naming_key_and_allowed(values: dict, key: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StackConfig.from_mapping(values)
    lines = [p for p in caught.value.problems if p.startswith(f"{key}:")]
    assert lines, f"no problem names {key}: {caught.value.problems}"
    assert any(allowed in line for line in lines), f"{key}: {lines} should mention {allowed!r}"


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        StackConfig.from_mapping({"clusterMaxNodes": 0, "sqlSku": "nope", "storageSku": "nope"})
    keys = {p.split(":", 1)[0] for p in caught.value.problems}
    assert {"clusterMaxNodes", "sqlSku", "storageSku"} <= keys
    assert "3 problem(s)" in str(caught.value)


def test_a_badly_typed_value_does_not_cause_misleading_follow_up_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        StackConfig.from_mapping({"clusterMaxNodes": "many", "clusterMinNodes": 3})
    assert caught.value.problems == ["clusterMaxNodes: must be an integer (got 'many')"]


def test_engine_strings_are_coerced() -> None:
    config = StackConfig.from_mapping(
        {
            "clusterMaxNodes": "4",
            "protectData": "true",
            "sqlFirewallIpRanges": '["203.0.113.7", "198.51.100.0-198.51.100.255"]',
            "sqlAdminLogin": "dba",
            "sqlAdminObjectId": "5f0e1c6a-8a5e-4f7e-9a62-2f8a7f6f0a11",
        }
    )
    assert config.cluster_max_nodes == 4 and config.protect_data is True
    assert config.sql_firewall_ranges == [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.0", "198.51.100.255"),
    ]
    assert not config.sql_admin_from_deployer


def test_unknown_keys_are_ignored_for_the_pipeline_module() -> None:
    assert StackConfig.from_mapping({"scheduleCron": "not validated here"}) == StackConfig()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT120S", 120), ("PT5M", 300), ("PT1H30M", 5400), ("P1D", 86400), ("PT0.5S", 0.5)],
)
def test_iso8601_spans(text: str, seconds: float) -> None:
    assert iso8601_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "120", "PT5", "5M", "PT-5S", "P1H"])
def test_malformed_iso8601_spans(text: str) -> None:
    assert iso8601_seconds(text) is None


def test_sql_sku_maps_to_the_arm_sku_object() -> None:
    assert sql_sku_parts("GP_S_Gen5_2") == {
        "name": "GP_S_Gen5",
        "tier": "GeneralPurpose",
        "family": "Gen5",
        "capacity": 2,
    }
    assert sql_sku_parts("BC_Gen5_4")["tier"] == "BusinessCritical"


# --- who deploys -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "User"),
        ({"sqlAdminPrincipalType": "Application"}, "ServicePrincipal"),
        # An admin named in the config says nothing about the deployer: ARM looks it up.
        (
            {
                "sqlAdminLogin": "dba",
                "sqlAdminObjectId": "5a5a5a5a-1111-4222-8333-444455556666",
                "sqlAdminPrincipalType": "Group",
            },
            None,
        ),
    ],
)
def test_the_deployers_principal_type_follows_the_sql_admin_setting(values, expected) -> None:
    assert StackConfig.from_mapping(values).deployer_principal_type == expected


def test_the_ci_deployed_stacks_say_their_deployer_is_an_application() -> None:
    for stack in ("dev", "prod"):
        config = stack_config(stack)
        assert config.sql_admin_from_deployer and config.sql_admin_principal_type == "Application"


# --- alert receivers: dev may have none, a production stack must name one ---------------------
def test_dev_may_have_no_alert_receiver_but_prod_names_one() -> None:
    assert StackConfig.from_mapping(stack_values("dev"), stack="dev").alert_emails == ()
    prod = StackConfig.from_mapping(stack_values("prod"), stack="prod")
    assert prod.alert_emails, "Pulumi.prod.yaml must name an alert receiver"


@pytest.mark.parametrize(
    "receivers",
    [{"alertEmails": []}, {"alertEmails": [], "alertWebhookUrl": ""}],
    ids=["no-email", "no-email-no-webhook"],
)
def test_prod_without_a_receiver_is_rejected_naming_the_key(receivers: dict) -> None:
    values = {**stack_values("prod"), **receivers}
    with pytest.raises(ConfigError) as caught:
        StackConfig.from_mapping(values, stack="prod")
    (line,) = caught.value.problems
    assert line.startswith("alertEmails: stack 'prod' must name at least one alert receiver")


def test_a_webhook_alone_is_a_receiver_if_the_engine_holds_it_encrypted() -> None:
    values = {**stack_values("prod"), "alertEmails": [], "alertWebhookUrl": "https://h.io/x"}
    config = StackConfig.from_mapping(
        values, stack="prod", secret_keys=frozenset({"alertWebhookUrl"})
    )
    assert config.alert_webhook_url == "https://h.io/x"
    with pytest.raises(ConfigError, match=r"alertWebhookUrl: store it encrypted .*--secret"):
        StackConfig.from_mapping(values, stack="prod", secret_keys=frozenset())


# --- private networking: prod behind it, dev public; what it asks of the other keys ----------
def test_prod_runs_behind_private_networking_and_dev_stays_public() -> None:
    assert stack_config("prod").network_isolation
    assert not stack_config("dev").network_isolation
    with pytest.raises(ConfigError) as caught:
        StackConfig.from_mapping({**stack_values("prod"), "networkIsolation": False}, stack="prod")
    (line,) = caught.value.problems
    assert line.startswith("networkIsolation: stack 'prod' must run behind private networking")


def test_the_vnet_is_split_into_the_endpoint_and_runner_subnets() -> None:
    config = StackConfig.from_mapping({"networkAddressSpace": "10.70.0.0/22"})
    assert config.network_subnets == {
        "private-endpoints": "10.70.0.0/24",
        "deploy-runner": "10.70.1.0/24",
    }


@pytest.mark.parametrize(
    ("values", "key", "allowed"),
    [
        ({"networkAddressSpace": "10.62.0.0/24"}, "networkAddressSpace", "a /23 or larger"),
        ({"networkAddressSpace": "10.62.0.1/23"}, "networkAddressSpace", "e.g. 10.62.0.0/23"),
        ({"networkAddressSpace": "vnet"}, "networkAddressSpace", "CIDR"),
        ({"networkAddressSpace": "20.62.0.0/23"}, "networkAddressSpace", "RFC 1918"),
        (
            {"networkIsolation": True, "registrySku": "Basic"},
            "registrySku",
            "networkIsolation needs registrySku=Premium",
        ),
        (
            {
                "networkIsolation": True,
                "registrySku": "Premium",
                "sqlFirewallIpRanges": ["1.2.3.4"],
            },
            "sqlFirewallIpRanges",
            "must be empty with networkIsolation",
        ),
    ],
)
def test_network_values_that_cannot_work_fail_naming_the_key(values, key, allowed) -> None:
    with pytest.raises(ConfigError) as caught:
        StackConfig.from_mapping(values)
    lines = [line for line in caught.value.problems if line.startswith(f"{key}:")]
    assert lines and allowed in lines[0], caught.value.problems


def test_the_public_dev_stack_may_keep_its_basic_registry_and_client_ranges() -> None:
    config = StackConfig.from_mapping(
        {"registrySku": "Basic", "sqlFirewallIpRanges": ["203.0.113.7"]}, stack="dev"
    )
    assert not config.network_isolation and config.sql_firewall_ranges
