"""Typed, validated stack configuration of the infrastructure (no Pulumi engine needed).

`StackConfig.from_mapping(values)` turns a mapping of camelCase config keys (the keys of
`Pulumi.yaml`, without the `batchscore:` namespace) into a frozen dataclass, or raises one
`ConfigError` that lists every bad value, each line naming its key and what is allowed.
Values may be typed (YAML, tests) or the strings the engine hands over (`"3"`, `"true"`,
a JSON list). Missing keys take the defaults below, which `Pulumi.yaml` declares too (a
test keeps the two in step). `StackConfig.from_pulumi()` is the thin engine adapter.

The scoring-pipeline keys (scheduleCron ... appendRows) live in the same namespace but are
validated by the pipeline's own module; unknown keys are ignored here for that reason.

Some rules depend on the stack: a production stack (:data:`PRODUCTION_STACKS`) must name an
alert receiver. `from_mapping(values, stack=...)` applies them; without a stack they are skipped.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from components.config.errors import ConfigError
from components.config.files import coerce

PROJECT = "batchscore"

# --- allowed values -------------------------------------------------------------------------
STORAGE_SKUS = (
    "Standard_LRS",
    "Standard_ZRS",
    "Standard_GRS",
    "Standard_RAGRS",
    "Standard_GZRS",
    "Standard_RAGZRS",
)
REGISTRY_SKUS = ("Basic", "Standard", "Premium")
# Azure SQL SKUs this stack knows how to size: serverless (GP_S_*) and provisioned vCore.
SQL_SERVERLESS_SKUS = tuple(f"GP_S_Gen5_{n}" for n in (1, 2, 4, 6, 8, 10, 12, 14, 16))
SQL_PROVISIONED_SKUS = tuple(f"GP_Gen5_{n}" for n in (2, 4, 6, 8, 10, 12, 14, 16)) + tuple(
    f"BC_Gen5_{n}" for n in (2, 4, 6, 8, 10, 12, 14, 16)
)
SQL_SKUS = SQL_SERVERLESS_SKUS + SQL_PROVISIONED_SKUS
SQL_BACKUP_REDUNDANCIES = ("Local", "Zone", "Geo", "GeoZone")
SQL_ADMIN_PRINCIPAL_TYPES = ("User", "Group", "Application")
OUT_OF_ORDER_POLICIES = ("Adjust", "Drop")
OUTPUT_ERROR_POLICIES = ("Drop", "Stop")
VM_PRIORITIES = ("Dedicated", "LowPriority")
# Stream Analytics streaming units: 1, 3, 6 and multiples of 6.
STREAMING_UNITS = (1, 3, 6, *range(12, 397, 6))
# Stacks whose alerts must reach someone (the policy pack's always-on stacks, the same name).
PRODUCTION_STACKS = ("prod",)
# Azure Monitor alert severities: 0 critical .. 4 verbose.
ALERT_SEVERITIES = (0, 1, 2, 3, 4)
# Log search alert rules: evaluated every 1 minute to 1 day, and a stateful (auto-resolving)
# rule at most every 12 hours; a query looks back at most 2 days. Source: "Create or edit a
# log search alert rule" (learn.microsoft.com/azure/azure-monitor/alerts/
# alerts-create-log-alert-rule), "Frequency of evaluation", "Automatically resolve alerts" and
# "Override query time range". Five minutes is the shortest window the rules here use.
ALERT_MINUTES_MIN, ALERT_FREQUENCY_MINUTES_MAX, ALERT_WINDOW_MINUTES_MAX = 5, 720, 2880
# The windows (windowSize) a scheduled query rule accepts, in minutes: any other value is
# refused at deployment with "Supported granularities are: 5, 10, 15, 30, 45, 60, 120, 180,
# 240, 300, 360, 1440, 2880" (azure-rest-api-specs#21258, terraform-provider-azurerm#18886;
# the swagger types it as a free duration).
LOG_ALERT_WINDOWS = (5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440, 2880)
# alertEvaluationMinutes is both a frequency (at most 12 hours) and the window of the rules
# that look for a failure: it must be a window no longer than the longest frequency.
ALERT_EVALUATION_MINUTES = tuple(w for w in LOG_ALERT_WINDOWS if w <= ALERT_FREQUENCY_MINUTES_MAX)

_LOCATION = re.compile(r"^[a-z][a-z0-9]{2,39}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_VM_SIZE = re.compile(r"^Standard_[A-Z][A-Za-z0-9_]*$")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def log_alert_window(minutes: int) -> int | None:
    """The shortest window a log alert rule accepts that covers ``minutes``, or None when even
    the longest (2 days) is too short."""
    return next((w for w in LOG_ALERT_WINDOWS if w >= minutes), None)


def config_key(field_name: str) -> str:
    """The camelCase config key of a dataclass field (`cluster_max_nodes` -> `clusterMaxNodes`)."""
    head, *rest = field_name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def iso8601_seconds(text: str) -> float | None:
    """Seconds of an ISO-8601 duration such as `PT120S` or `PT2M` (days at most), else None."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or text in ("P", "PT"):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    if not parts:
        return None
    return (
        parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )


def parse_ip_range(text: str) -> tuple[str, str]:
    """`"203.0.113.7"` or `"203.0.113.0-203.0.113.255"` -> (start, end); ValueError if not."""
    start, _, end = str(text).partition("-")
    first = ipaddress.IPv4Address(start.strip())
    last = ipaddress.IPv4Address(end.strip()) if end else first
    if last < first:
        raise ValueError(f"range end {last} is below its start {first}")
    return str(first), str(last)


def sql_sku_parts(sku: str) -> dict[str, Any]:
    """`GP_S_Gen5_2` -> the ARM sku object {name: GP_S_Gen5, tier, family, capacity}."""
    name, _, capacity = sku.rpartition("_")
    tier = "BusinessCritical" if name.startswith("BC_") else "GeneralPurpose"
    return {"name": name, "tier": tier, "family": "Gen5", "capacity": int(capacity)}


@dataclass(frozen=True)
class StackConfig:
    """Every infrastructure knob of one stack. Field `a_b` is config key `aB`."""

    # --- general
    location: str = "westeurope"
    protect_data: bool = False
    # --- ingestion (Event Hubs + Capture)
    event_hubs_capacity: int = 1
    event_hubs_zone_redundant: bool = False
    event_hub_partition_count: int = 2
    event_hub_retention_hours: int = 24
    capture_interval_seconds: int = 300
    capture_size_limit_bytes: int = 314572800
    # --- stream processing (Stream Analytics)
    stream_window_minutes: int = 5
    streaming_units: int = 1
    events_out_of_order_policy: str = "Adjust"
    events_out_of_order_max_delay_seconds: int = 10
    events_late_arrival_max_delay_seconds: int = 60
    output_error_policy: str = "Drop"
    # --- sensor database (Azure SQL)
    sql_admin_login: str = ""
    sql_admin_object_id: str = ""
    sql_admin_principal_type: str = "User"
    sql_admin_tenant_id: str = ""
    sql_firewall_ip_ranges: tuple[str, ...] = ()
    sql_sku: str = "GP_S_Gen5_1"
    sql_auto_pause_delay_minutes: int = 60
    sql_max_size_gb: int = 32
    sql_zone_redundant: bool = False
    sql_backup_storage_redundancy: str = "Local"
    # --- storage
    storage_sku: str = "Standard_LRS"
    blob_soft_delete_days: int = 7
    # --- registry and image
    registry_sku: str = "Basic"
    registry_zone_redundant: bool = False
    image_repository: str = "batchscore/scoring"
    # --- monitoring and the ML workspace
    log_retention_days: int = 30
    key_vault_soft_delete_days: int = 7
    cluster_vm_size: str = "Standard_DS3_v2"
    cluster_vm_priority: str = "Dedicated"
    cluster_min_nodes: int = 0
    cluster_max_nodes: int = 2
    cluster_idle_time_before_scale_down: str = "PT120S"
    # --- private networking (components/network.py)
    network_isolation: bool = False
    network_address_space: str = "10.62.0.0/23"
    # --- alerting (components/alerting.py)
    alert_emails: tuple[str, ...] = ()
    alert_webhook_url: str = ""
    alert_evaluation_minutes: int = 15
    alert_run_grace_minutes: int = 30
    alert_failed_pairs_percent: int = 5
    alert_drifted_pairs_percent: int = 20
    alert_no_input_minutes: int = 30
    alert_ingestion_stall_minutes: int = 30
    alert_severity_run_failed: int = 1
    alert_severity_run_quality: int = 2
    alert_severity_stream: int = 1
    alert_severity_cluster: int = 2

    # --- derived values the components use -------------------------------------------------
    @property
    def sql_is_serverless(self) -> bool:
        return self.sql_sku in SQL_SERVERLESS_SKUS

    @property
    def sql_admin_from_deployer(self) -> bool:
        """No admin configured: the identity running `pulumi up` becomes the Entra admin."""
        return not self.sql_admin_object_id

    @property
    def deployer_principal_type(self) -> str | None:
        """The ARM principal type of the identity running `pulumi up`, when the config says it
        (the deployer is the SQL admin, of kind User or Application), else None: ARM then
        looks the principal up itself."""
        if not self.sql_admin_from_deployer:
            return None
        return {"User": "User", "Application": "ServicePrincipal"}.get(
            self.sql_admin_principal_type
        )

    @property
    def sql_firewall_ranges(self) -> list[tuple[str, str]]:
        return [parse_ip_range(text) for text in self.sql_firewall_ip_ranges]

    @property
    def network_subnets(self) -> dict[str, str]:
        """Subnet name -> address prefix of the stack's VNet: the first /24 of
        `networkAddressSpace` for the private endpoints, the next for the deployment runner."""
        subnets = ipaddress.IPv4Network(self.network_address_space).subnets(new_prefix=24)
        return {"private-endpoints": str(next(subnets)), "deploy-runner": str(next(subnets))}

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def keys(cls) -> dict[str, str]:
        """config key -> field name, for every infrastructure key."""
        return {config_key(f.name): f.name for f in dataclasses.fields(cls)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """config key -> default value (lists for array keys), as Pulumi.yaml declares them."""
        default = cls()
        out: dict[str, Any] = {}
        for key, name in cls.keys().items():
            value = getattr(default, name)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        stack: str | None = None,
        secret_keys: frozenset[str] | None = None,
    ) -> StackConfig:
        """Validate `values` (camelCase keys; others ignored) or raise one `ConfigError`.

        `stack` adds the stack's own rules (a production stack names an alert receiver);
        `secret_keys` (the keys the engine holds encrypted) adds the check that a webhook URL
        is one of them."""
        problems: list[str] = []
        typed: dict[str, Any] = {}
        defaults = cls()
        for field in dataclasses.fields(cls):
            key = config_key(field.name)
            default = getattr(defaults, field.name)
            if key not in values or values[key] is None:
                typed[field.name] = default
                continue
            try:
                typed[field.name] = _coerce(values[key], default)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
                typed[field.name] = default
        config = cls(**typed)
        # A value of the wrong type was replaced by its default above: checks that mention
        # that key would judge the default, not the user's value, so they are left out.
        wrong_type = {p.split(":", 1)[0] for p in problems}
        reported = list(problems)
        found = [problem for check in _CHECKS for problem in check(config)]
        found += _stack_rules(config, stack, secret_keys)
        for problem in found:
            if problem and not any(key in problem for key in wrong_type):
                reported.append(problem)
        if reported:
            raise ConfigError.listing("stack configuration", reported)
        return config

    @classmethod
    def from_pulumi(cls) -> StackConfig:
        """Read the project's config namespace from the running Pulumi program."""
        import pulumi
        from pulumi.runtime.config import is_config_secret

        config = pulumi.Config()
        raw = {key: config.get(key) for key in cls.keys()}
        secret = frozenset(k for k in cls.keys() if is_config_secret(config.full_key(k)))
        return cls.from_mapping(
            {k: v for k, v in raw.items() if v is not None},
            stack=pulumi.get_stack(),
            secret_keys=secret,
        )


# --- coercion (engine strings or typed values) ---------------------------------------------
def _coerce(value: Any, default: Any) -> Any:
    """``value`` as the type of the field's default, by the stack files' one coercion."""
    if isinstance(default, bool):
        return coerce(value, "boolean")
    if isinstance(default, int):
        return coerce(value, "integer")
    if isinstance(default, tuple):
        try:
            items = coerce(value, "array")
        except ValueError:
            items = None
        if items is None or not all(isinstance(item, str) for item in items):
            raise ValueError(f"must be a list of strings (got {value!r})")
        return tuple(items)
    if not isinstance(value, str):
        raise ValueError(f"must be a string (got {value!r})")
    return value.strip()


# --- checks: each returns problem lines "key: what is wrong (allowed ...)" -----------------
def _one_of(key: str, value: Any, allowed: tuple[Any, ...], what: str = "value") -> str:
    if value in allowed:
        return ""
    shown = ", ".join(str(a) for a in allowed)
    return f"{key}: unknown {what} {value!r}; allowed: {shown}"


def _between(key: str, value: int, low: int, high: int, unit: str = "") -> str:
    if low <= value <= high:
        return ""
    return f"{key}: {value} is out of range; allowed: {low}..{high}{unit}"


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _general(c: StackConfig) -> list[str]:
    problems = []
    if not _LOCATION.match(c.location):
        problems.append(
            f"location: {c.location!r} is not an Azure region name; "
            "allowed: lowercase letters and digits such as westeurope"
        )
    return problems


def _ingestion(c: StackConfig) -> list[str]:
    return [
        _between("eventHubsCapacity", c.event_hubs_capacity, 1, 40, " throughput units"),
        _between("eventHubPartitionCount", c.event_hub_partition_count, 1, 32),
        _between("eventHubRetentionHours", c.event_hub_retention_hours, 1, 168, " hours"),
        _between("captureIntervalSeconds", c.capture_interval_seconds, 60, 900, " seconds"),
        _between(
            "captureSizeLimitBytes", c.capture_size_limit_bytes, 10485760, 524288000, " bytes"
        ),
    ]


def _stream(c: StackConfig) -> list[str]:
    problems = [
        _between("streamWindowMinutes", c.stream_window_minutes, 1, 1440, " minutes"),
        _one_of("eventsOutOfOrderPolicy", c.events_out_of_order_policy, OUT_OF_ORDER_POLICIES),
        _one_of("outputErrorPolicy", c.output_error_policy, OUTPUT_ERROR_POLICIES),
        _between(
            "eventsOutOfOrderMaxDelaySeconds", c.events_out_of_order_max_delay_seconds, 0, 599
        ),
        # -1 keeps late events forever; otherwise up to 20 days.
        _between(
            "eventsLateArrivalMaxDelaySeconds", c.events_late_arrival_max_delay_seconds, -1, 1814399
        ),
    ]
    if c.streaming_units not in STREAMING_UNITS:
        problems.append(
            f"streamingUnits: {c.streaming_units} is not a Stream Analytics size; "
            "allowed: 1, 3, 6 or a multiple of 6 up to 396"
        )
    return problems


def _sql(c: StackConfig) -> list[str]:
    problems = [
        _one_of("sqlSku", c.sql_sku, SQL_SKUS, "SKU"),
        _one_of(
            "sqlBackupStorageRedundancy", c.sql_backup_storage_redundancy, SQL_BACKUP_REDUNDANCIES
        ),
        _one_of("sqlAdminPrincipalType", c.sql_admin_principal_type, SQL_ADMIN_PRINCIPAL_TYPES),
        _between("sqlMaxSizeGb", c.sql_max_size_gb, 1, 4096, " GB"),
    ]
    if c.sql_admin_object_id and not _is_guid(c.sql_admin_object_id):
        problems.append(f"sqlAdminObjectId: {c.sql_admin_object_id!r} is not a GUID")
    if c.sql_admin_tenant_id and not _is_guid(c.sql_admin_tenant_id):
        problems.append(f"sqlAdminTenantId: {c.sql_admin_tenant_id!r} is not a GUID")
    if not c.sql_admin_object_id and c.sql_admin_principal_type == "Group":
        problems.append(
            "sqlAdminPrincipalType: Group needs sqlAdminObjectId (the group); without it the "
            "identity running `pulumi up` is the admin: User for a person, Application for a "
            "service principal or managed identity"
        )
    if bool(c.sql_admin_login) != bool(c.sql_admin_object_id):
        problems.append(
            "sqlAdminLogin: set both sqlAdminLogin and sqlAdminObjectId (an Entra user, group "
            "or app), or neither (the identity running `pulumi up` becomes the admin)"
        )
    pause = c.sql_auto_pause_delay_minutes
    if c.sql_sku in SQL_SERVERLESS_SKUS:
        if pause != -1 and not 15 <= pause <= 10080:
            problems.append(
                f"sqlAutoPauseDelayMinutes: {pause} is out of range; allowed: -1 (never pause) "
                "or 15..10080 minutes"
            )
    elif c.sql_sku in SQL_SKUS and pause != -1:
        problems.append(
            f"sqlAutoPauseDelayMinutes: {pause} needs a serverless sqlSku (GP_S_Gen5_*); "
            f"allowed with sqlSku={c.sql_sku}: -1"
        )
    for index, text in enumerate(c.sql_firewall_ip_ranges):
        try:
            parse_ip_range(text)
        except ValueError as exc:
            problems.append(
                f"sqlFirewallIpRanges[{index}]: {text!r} is not an IPv4 address or "
                f"'start-end' range ({exc})"
            )
    return problems


def _storage_and_registry(c: StackConfig) -> list[str]:
    problems = [
        _one_of("storageSku", c.storage_sku, STORAGE_SKUS, "SKU"),
        _between("blobSoftDeleteDays", c.blob_soft_delete_days, 1, 365, " days"),
        _one_of("registrySku", c.registry_sku, REGISTRY_SKUS, "SKU"),
    ]
    if c.registry_zone_redundant and c.registry_sku != "Premium":
        problems.append(
            f"registryZoneRedundant: zone redundancy needs registrySku=Premium, "
            f"got registrySku={c.registry_sku}"
        )
    if not _REPOSITORY.match(c.image_repository):
        problems.append(
            f"imageRepository: {c.image_repository!r} is not a repository name; allowed: "
            "lowercase letters, digits, '.', '_', '-' and '/' between path parts"
        )
    return problems


def _workspace(c: StackConfig) -> list[str]:
    problems = [
        _between("logRetentionDays", c.log_retention_days, 30, 730, " days"),
        _between("keyVaultSoftDeleteDays", c.key_vault_soft_delete_days, 7, 90, " days"),
        _one_of("clusterVmPriority", c.cluster_vm_priority, VM_PRIORITIES),
        _between("clusterMaxNodes", c.cluster_max_nodes, 1, 100, " nodes"),
        _between("clusterMinNodes", c.cluster_min_nodes, 0, 100, " nodes"),
    ]
    if c.cluster_max_nodes >= 1 and c.cluster_min_nodes > c.cluster_max_nodes:
        problems.append(
            f"clusterMinNodes: {c.cluster_min_nodes} is above clusterMaxNodes "
            f"({c.cluster_max_nodes}); allowed: 0..{c.cluster_max_nodes}"
        )
    if not _VM_SIZE.match(c.cluster_vm_size):
        problems.append(
            f"clusterVmSize: {c.cluster_vm_size!r} is not an Azure VM size; "
            "allowed: names like Standard_DS3_v2"
        )
    seconds = iso8601_seconds(c.cluster_idle_time_before_scale_down)
    if seconds is None or seconds <= 0:
        problems.append(
            f"clusterIdleTimeBeforeScaleDown: {c.cluster_idle_time_before_scale_down!r} is not "
            "a positive ISO-8601 time span; allowed: e.g. PT120S, PT5M, PT1H"
        )
    return problems


def _alerting(c: StackConfig) -> list[str]:
    low, window_max = ALERT_MINUTES_MIN, ALERT_WINDOW_MINUTES_MAX
    problems = [
        # Every window a rule takes from config must be one Azure accepts (LOG_ALERT_WINDOWS).
        _one_of(
            "alertEvaluationMinutes",
            c.alert_evaluation_minutes,
            ALERT_EVALUATION_MINUTES,
            "log alert window in minutes",
        ),
        _between("alertRunGraceMinutes", c.alert_run_grace_minutes, low, window_max, " minutes"),
        _between("alertFailedPairsPercent", c.alert_failed_pairs_percent, 0, 100, " percent"),
        _between("alertDriftedPairsPercent", c.alert_drifted_pairs_percent, 0, 100, " percent"),
        _one_of(
            "alertNoInputMinutes",
            c.alert_no_input_minutes,
            LOG_ALERT_WINDOWS,
            "log alert window in minutes",
        ),
        _one_of(
            "alertIngestionStallMinutes",
            c.alert_ingestion_stall_minutes,
            LOG_ALERT_WINDOWS,
            "log alert window in minutes",
        ),
    ]
    for key in (
        "alertSeverityRunFailed",
        "alertSeverityRunQuality",
        "alertSeverityStream",
        "alertSeverityCluster",
    ):
        value = getattr(c, _field_of(key))
        problems.append(_one_of(key, value, ALERT_SEVERITIES, "severity (0 critical .. 4 verbose)"))
    # A window shorter than two tumbling windows would alert between two healthy windows.
    if c.alert_ingestion_stall_minutes < 2 * c.stream_window_minutes:
        problems.append(
            f"alertIngestionStallMinutes: {c.alert_ingestion_stall_minutes} is shorter than two "
            f"Stream Analytics windows (streamWindowMinutes {c.stream_window_minutes}); "
            f"allowed: at least {2 * c.stream_window_minutes}"
        )
    for index, address in enumerate(c.alert_emails):
        if not _EMAIL.match(address):
            problems.append(f"alertEmails[{index}]: {address!r} is not an email address")
    if len(set(a.lower() for a in c.alert_emails)) != len(c.alert_emails):
        problems.append("alertEmails: an address is listed twice")
    url = c.alert_webhook_url
    if url and (not url.startswith("https://") or not urlsplit(url).hostname):
        problems.append(
            "alertWebhookUrl: must be an https:// URL (the alert payload names resources)"
        )
    return problems


def _network(c: StackConfig) -> list[str]:
    """The VNet's address space, and what private networking asks of the other keys."""
    problems = []
    try:
        space = ipaddress.IPv4Network(c.network_address_space)
    except ValueError as exc:
        return [
            f"networkAddressSpace: {c.network_address_space!r} is not an IPv4 network in CIDR "
            f"form ({exc}); allowed: e.g. 10.62.0.0/23"
        ]
    if space.prefixlen > 23:
        problems.append(
            f"networkAddressSpace: {space} is too small; allowed: a /23 or larger (two /24 "
            "subnets: private endpoints and the deployment runner)"
        )
    if not space.is_private:
        problems.append(f"networkAddressSpace: {space} is not a private (RFC 1918) range")
    if not c.network_isolation:
        return problems
    # Private endpoints of a registry need the Premium tier ("Connect privately to an Azure
    # container registry using Azure Private Link", learn.microsoft.com).
    if c.registry_sku != "Premium":
        problems.append(
            f"registrySku: networkIsolation needs registrySku=Premium (private endpoints), "
            f"got {c.registry_sku}"
        )
    # Azure SQL refuses firewall rules while public network access is disabled
    # ("Unable to create or modify firewall rules when public network access for the server
    # is disabled", Azure/azure-cli#16771).
    if c.sql_firewall_ip_ranges:
        problems.append(
            "sqlFirewallIpRanges: must be empty with networkIsolation (the server takes private "
            "endpoint connections only; clients reach it through the VNet)"
        )
    return problems


def _field_of(key: str) -> str:
    return StackConfig.keys()[key]


def _stack_rules(
    c: StackConfig, stack: str | None, secret_keys: frozenset[str] | None
) -> list[str]:
    """Rules that need the stack's name or the engine's view of its config."""
    problems = []
    if stack in PRODUCTION_STACKS and not (c.alert_emails or c.alert_webhook_url):
        problems.append(
            f"alertEmails: stack {stack!r} must name at least one alert receiver (an address "
            "in alertEmails, or alertWebhookUrl), or its alerts reach nobody"
        )
    if stack in PRODUCTION_STACKS and not c.network_isolation:
        problems.append(
            f"networkIsolation: stack {stack!r} must run behind private networking (set it to "
            "true); the policy pack refuses its public resources anyway"
        )
    if secret_keys is not None and c.alert_webhook_url and "alertWebhookUrl" not in secret_keys:
        problems.append(
            "alertWebhookUrl: store it encrypted (`pulumi config set --secret alertWebhookUrl "
            "<url>`): a webhook URL often carries its own access token"
        )
    return problems


_CHECKS: tuple[Callable[[StackConfig], list[str]], ...] = (
    _general,
    _ingestion,
    _stream,
    _sql,
    _storage_and_registry,
    _workspace,
    _alerting,
    _network,
)
