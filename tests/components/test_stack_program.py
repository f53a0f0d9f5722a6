"""The whole program under mocks, dev and prod: every resource of the design, wired right.

Each stack's plan comes from `python -m components.offline.plan --stack <stack> --json-only` in a
subprocess (the Pulumi mock runtime is process-global), once per test session.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.config import StackConfig
from components.offline.mocks import OfflineMocks
from components.offline.plan import load_project, plan_in_subprocess, stack_config
from components.offline.plan_view import PlanView

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")

RG = "azure-native:resources:ResourceGroup"
STORAGE = "azure-native:storage:StorageAccount"
CONTAINER = "azure-native:storage:BlobContainer"
NAMESPACE = "azure-native:eventhub:Namespace"
HUB = "azure-native:eventhub:EventHub"
CONSUMER_GROUP = "azure-native:eventhub:ConsumerGroup"
JOB = "azure-native:streamanalytics:StreamingJob"
SA_INPUT = "azure-native:streamanalytics:Input"
SA_OUTPUT = "azure-native:streamanalytics:Output"
SQL_SERVER = "azure-native:sql:Server"
SQL_DB = "azure-native:sql:Database"
FIREWALL = "azure-native:sql:FirewallRule"
REGISTRY = "azure-native:containerregistry:Registry"
IMAGE = "docker-build:index:Image"
LOGS = "azure-native:operationalinsights:Workspace"
INSIGHTS = "azure-native:applicationinsights:Component"
VAULT = "azure-native:keyvault:Vault"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
COMPUTE = "azure-native:machinelearningservices:Compute"
DATASTORE = "azure-native:machinelearningservices:Datastore"
UAI = "azure-native:managedidentity:UserAssignedIdentity"
ROLE = "azure-native:authorization:RoleAssignment"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"

DESIGN_TYPES = {
    RG, STORAGE, CONTAINER, NAMESPACE, HUB, CONSUMER_GROUP, JOB, SA_INPUT, SA_OUTPUT,
    SQL_SERVER, SQL_DB, REGISTRY, IMAGE, LOGS, INSIGHTS, VAULT, WORKSPACE,
    COMPUTE, DATASTORE, UAI, ROLE, DIAGNOSTICS,
}  # fmt: skip
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
DNS_ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
OUTBOUND_RULE = "azure-native:machinelearningservices:ManagedNetworkSettingsRule"
SA_CLUSTER = "azure-native:streamanalytics:Cluster"
SA_ENDPOINT = "azure-native:streamanalytics:PrivateEndpoint"
# Only the stacks with networkIsolation (prod) declare these; the public ones (dev) the firewall.
PRIVATE_TYPES = {
    "azure-native:network:VirtualNetwork", "azure-native:network:Subnet", PRIVATE_ENDPOINT,
    DNS_ZONE_GROUP, "azure-native:privatedns:PrivateZone",
    "azure-native:privatedns:VirtualNetworkLink", OUTBOUND_RULE, SA_CLUSTER, SA_ENDPOINT,
}  # fmt: skip
COMPONENTS = {
    "Ingestion",
    "StreamProcessing",
    "SensorDatabase",
    "Storage",
    "ScoringImage",
    "MlWorkspace",
    "Monitoring",
    "SqlBootstrap",
    "StreamJobStart",
    "ScoringPipeline",
    "TrainingPipeline",
    "Alerting",
    "OperationsWorkbook",
    "PublishedOutputs",
}


@pytest.fixture(scope="module", params=STACKS)
def plan(request) -> PlanView:
    return PlanView(plan_in_subprocess(request.param))


def config_of(stack: str) -> StackConfig:
    namespace = load_project()["name"] + ":"
    values = {k[len(namespace) :]: v for k, v in stack_config(stack).items()}
    return StackConfig.from_mapping(values)


def principal(plan: PlanView, resource_type: str, name: str) -> str:
    """The object id the offline mocks gave this resource's managed identity."""
    return OfflineMocks("batchscore", plan.stack).principal_id(resource_type, name)


def role_ids(plan: PlanView, principal_id: str) -> dict[str, str]:
    """role definition guid -> scope, for the roles granted to one principal."""
    return {
        r.get("roleDefinitionId").rsplit("/", 1)[1]: r.get("scope")
        for r in plan.of_type(ROLE)
        if r.get("principalId") == principal_id
    }


# --- completeness and structure ----------------------------------------------------------------
def test_every_resource_type_of_the_design_is_declared(plan: PlanView) -> None:
    private = config_of(plan.stack).network_isolation
    wanted = DESIGN_TYPES | (PRIVATE_TYPES if private else {FIREWALL})
    declared = {r.type for r in plan}
    missing = wanted - declared
    assert not missing, f"stack {plan.stack} lacks {sorted(missing)}"
    unwanted = ({FIREWALL} if private else PRIVATE_TYPES) & declared
    assert not unwanted, f"stack {plan.stack} must not declare {sorted(unwanted)}"


def test_components_use_the_project_type_token_and_own_their_children(plan: PlanView) -> None:
    components = {r.type.split(":")[-1]: r for r in plan if r.type.startswith("batchscore:")}
    network = {"Network"} if config_of(plan.stack).network_isolation else set()
    assert set(components) == COMPONENTS | network
    assert all(r.type == f"batchscore:index:{n}" for n, r in components.items())
    component_names = {r.name for r in components.values()}
    top_level = {r.name for r in plan if r.parent is None} - component_names
    assert top_level == {"resource-group", "name-suffix"}, f"unparented: {top_level}"
    for resource in plan:
        if resource.parent:
            assert resource.name.startswith(resource.parent + "-"), (
                f"{resource} is not named from its component {resource.parent}"
            )


# --- ingestion and stream processing ----------------------------------------------------------
def test_hub_partitions_retention_and_capture_to_raw_as_namespace_identity(plan: PlanView) -> None:
    config = config_of(plan.stack)
    hub = plan.one(HUB)
    assert hub.get("eventHubName") == "sensor-readings"
    assert hub.get("partitionCount") == config.event_hub_partition_count
    assert hub.get("retentionDescription.retentionTimeInHours") == config.event_hub_retention_hours
    capture = hub.get("captureDescription")
    assert capture["enabled"] is True
    assert capture["intervalInSeconds"] == config.capture_interval_seconds
    destination = capture["destination"]
    assert destination["blobContainer"] == "raw"
    assert destination["storageAccountResourceId"] == plan.one(STORAGE).id
    assert destination["identity"] == {"type": "SystemAssigned"}
    namespace = plan.one(NAMESPACE)
    assert namespace.get("identity.type") == "SystemAssigned"
    assert namespace.get("sku.capacity") == config.event_hubs_capacity
    granted = role_ids(plan, principal(plan, NAMESPACE, namespace.name))
    assert granted == {"ba92f5b4-2d11-453d-a403-e96b0029c9fe": plan.one(STORAGE).id}, (
        "Capture's identity needs Storage Blob Data Contributor on the account (the docs' scope)"
    )


def test_stream_job_reads_the_hub_through_its_consumer_group_with_its_identity(
    plan: PlanView,
) -> None:
    job, source = plan.one(JOB), plan.one(SA_INPUT)
    namespace, hub, group = plan.one(NAMESPACE), plan.one(HUB), plan.one(CONSUMER_GROUP)
    datasource = source.get("properties.datasource")
    assert source.get("jobName") == job.id.rsplit("/", 1)[1], f"{source} is not on the job"
    assert datasource["type"] == "Microsoft.EventHub/EventHub"
    assert datasource["authenticationMode"] == "Msi"
    assert datasource["serviceBusNamespace"] == namespace.get("namespaceName")
    assert datasource["eventHubName"] == hub.get("eventHubName")
    assert datasource["consumerGroupName"] == group.get("consumerGroupName") == "stream-analytics"
    assert group.get("eventHubName") == hub.get("eventHubName")
    assert source.get("properties.serialization") == {"type": "Json", "encoding": "UTF8"}
    granted = role_ids(plan, principal(plan, JOB, job.name))
    assert granted == {"a638d3c7-ab3a-418d-83e6-5f17a39d4fde": hub.id}, (
        "the job identity needs Azure Event Hubs Data Receiver on the hub"
    )


def test_stream_job_writes_sensor_readings_to_the_database_with_its_identity(
    plan: PlanView,
) -> None:
    sink = plan.one(SA_OUTPUT)
    server, database = plan.one(SQL_SERVER), plan.one(SQL_DB)
    assert sink.get("jobName") == plan.one(JOB).id.rsplit("/", 1)[1], f"{sink} is not on the job"
    datasource = sink.get("datasource")
    assert datasource["type"] == "Microsoft.Sql/Server/Database"
    assert datasource["authenticationMode"] == "Msi"
    assert datasource["server"] == f"{server.get('serverName')}.database.windows.net"
    assert datasource["database"] == database.get("databaseName")
    assert datasource["table"] == "SensorReadings"
    assert "user" not in datasource and "password" not in datasource


def test_stream_job_settings_and_query_come_from_config(plan: PlanView) -> None:
    config = config_of(plan.stack)
    job = plan.one(JOB)
    assert job.get("compatibilityLevel") == "1.2"
    assert job.get("identity") == {"type": "SystemAssigned"}
    assert job.get("eventsOutOfOrderPolicy") == config.events_out_of_order_policy
    assert (
        job.get("eventsOutOfOrderMaxDelayInSeconds") == config.events_out_of_order_max_delay_seconds
    )
    assert (
        job.get("eventsLateArrivalMaxDelayInSeconds")
        == config.events_late_arrival_max_delay_seconds
    )
    assert job.get("transformation.streamingUnits") == config.streaming_units
    query = job.get("transformation.query")
    assert f"TumblingWindow(minute, {config.stream_window_minutes})" in query
    assert f"INTO\n    [{plan.one(SA_OUTPUT).get('outputName')}]" in query
    assert f"FROM\n    [{plan.one(SA_INPUT).get('inputName')}] TIMESTAMP BY [EventTime]" in query
    assert "System.Timestamp() AS [TS]" in query


# --- database ----------------------------------------------------------------------------------
def test_sql_firewall_allows_azure_services_for_stream_analytics(plan: PlanView) -> None:
    if config_of(plan.stack).network_isolation:  # private endpoint connections only
        assert not plan.of_type(FIREWALL)
        assert plan.one(SQL_SERVER).get("publicNetworkAccess") == "Disabled"
        return
    rule = plan.one(FIREWALL, "database-allow-azure-services")
    assert (rule.get("startIpAddress"), rule.get("endIpAddress")) == ("0.0.0.0", "0.0.0.0")
    assert plan.one(SQL_SERVER).get("publicNetworkAccess") == "Enabled"


# --- private networking (prod) -----------------------------------------------------------------
def test_each_private_service_has_its_endpoint_in_its_own_component(plan: PlanView) -> None:
    """Each endpoint connects its own component's service (by the mocks' ARM id), in the
    endpoints subnet, and its DNS zone group names the endpoint."""
    if not config_of(plan.stack).network_isolation:
        assert not plan.of_type(PRIVATE_ENDPOINT)
        return
    service_of = {
        "storage": (STORAGE, {"blob", "file", "queue", "table"}),
        "ingestion": (NAMESPACE, {"namespace"}),
        "database": (SQL_SERVER, {"sqlServer"}),
        "image": (REGISTRY, {"registry"}),
    }
    subnet = plan.one("azure-native:network:Subnet", "network-private-endpoints")
    # One subnet after the other: Azure refuses concurrent changes of one VNet's subnets.
    runner = plan.one("azure-native:network:Subnet", "network-deploy-runner")
    assert runner.depends_on == (subnet.name,)
    groups_by_parent: dict[str, set[str]] = {}
    for endpoint in plan.of_type(PRIVATE_ENDPOINT):
        (connection,) = endpoint.get("privateLinkServiceConnections")
        groups_by_parent.setdefault(endpoint.parent, set()).update(connection["groupIds"])
        assert endpoint.get("subnet.id") == subnet.id, endpoint
        if endpoint.parent in service_of:
            service = plan.one(service_of[endpoint.parent][0])
            assert connection["privateLinkServiceId"] == service.id, endpoint
    assert groups_by_parent == {
        **{parent: groups for parent, (_, groups) in service_of.items()},
        "ml": {"vault", "amlworkspace"},
    }
    zone_groups = {g.get("privateEndpointName") for g in plan.of_type(DNS_ZONE_GROUP)}
    assert zone_groups == {e.id.rsplit("/", 1)[1] for e in plan.of_type(PRIVATE_ENDPOINT)}


def test_the_workspace_has_a_managed_network_with_rules_one_after_another(plan: PlanView) -> None:
    workspace, compute = plan.one(WORKSPACE), plan.one(COMPUTE)
    if not config_of(plan.stack).network_isolation:
        assert workspace.get("publicNetworkAccess") == "Enabled"
        assert workspace.get("managedNetwork") is None and not plan.of_type(OUTBOUND_RULE)
        return
    assert workspace.get("publicNetworkAccess") == "Disabled"
    assert workspace.get("managedNetwork.isolationMode") == "AllowOnlyApprovedOutbound"
    assert workspace.get("managedNetwork.outboundRules") is None, "rules are resources (azapi#453)"
    assert compute.get("properties.properties.enableNodePublicIp") is False
    rules = {r.name: r for r in plan.of_type(OUTBOUND_RULE)}
    targets = {
        (r.get("properties.destination.subresourceTarget"), r.get("properties.type"))
        for r in rules.values()
    }
    assert targets == {
        ("queue", "PrivateEndpoint"), ("table", "PrivateEndpoint"), ("sqlServer", "PrivateEndpoint")
    }  # fmt: skip
    # Created one at a time (azapi#453): a chain, the cluster after the last.
    order = ["ml-outbound-storage-queue", "ml-outbound-storage-table", "ml-outbound-sql"]
    for before, after in zip(order, order[1:], strict=False):
        assert rules[after].depends_on == (before,), rules[after]
    assert "ml-outbound-sql" in compute.depends_on


def test_stream_analytics_runs_on_its_cluster_with_private_endpoints(plan: PlanView) -> None:
    job = plan.one(JOB)
    if not config_of(plan.stack).network_isolation:
        assert job.get("cluster") is None and not plan.of_type(SA_CLUSTER)
        return
    cluster = plan.one(SA_CLUSTER)
    assert job.get("cluster") == {"id": cluster.id}
    targets = {
        e.get("manualPrivateLinkServiceConnections")[0]["privateLinkServiceId"]
        for e in plan.of_type(SA_ENDPOINT)
    }
    assert targets == {plan.one(NAMESPACE).id, plan.one(SQL_SERVER).id}


def test_sql_database_sizing_follows_the_stack(plan: PlanView) -> None:
    database = plan.one(SQL_DB)
    if plan.stack == "dev":
        assert database.get("sku") == {
            "name": "GP_S_Gen5",
            "tier": "GeneralPurpose",
            "family": "Gen5",
            "capacity": 1,
        }
        assert database.get("autoPauseDelay") == 60 and database.get("minCapacity") == 0.5
        assert database.get("zoneRedundant") is False
    else:
        assert database.get("sku.name") == "GP_Gen5" and database.get("sku.capacity") == 2
        assert database.get("autoPauseDelay") is None
        assert database.get("zoneRedundant") is True


def test_sql_admin_defaults_to_the_deploying_identity(plan: PlanView) -> None:
    admins = plan.one(SQL_SERVER).get("administrators")
    assert admins["sid"] == "33333333-3333-4333-8333-333333333333"  # the mocks' deployer
    assert admins["tenantId"] == "22222222-2222-4222-8222-222222222222"
    assert admins["principalType"] == config_of(plan.stack).sql_admin_principal_type
    assert admins["principalType"] == "Application", "CI's service principal deploys dev and prod"


# --- image, workspace and cluster --------------------------------------------------------------
def test_image_is_built_from_the_scoring_folder_and_pushed_with_an_entra_login(
    plan: PlanView,
) -> None:
    image, registry = plan.one(IMAGE), plan.one(REGISTRY)
    assert image.get("context.location") == "scoring"
    assert image.get("dockerfile.location") == "docker/Dockerfile"
    assert (ROOT / "scoring" / "__init__.py").is_file(), "the build context is the package"
    assert (ROOT / "docker" / "Dockerfile").is_file(), "the Dockerfile the image refers to"
    assert image.get("push") is True
    assert image.get("platforms") == ["linux/amd64"]
    login_server = f"{registry.get('registryName')}.azurecr.io"
    assert image.get("tags") == [f"{login_server}/batchscore/scoring:{plan.stack}"]
    assert image.get("registries") == [
        {
            "address": login_server,
            "username": "00000000-0000-0000-0000-000000000000",
            "password": "[secret]",
        }
    ]


def test_workspace_is_wired_to_storage_vault_insights_and_registry(plan: PlanView) -> None:
    workspace = plan.one(WORKSPACE)
    assert workspace.get("storageAccount") == plan.one(STORAGE).id
    assert workspace.get("keyVault") == plan.one(VAULT).id
    assert workspace.get("applicationInsights") == plan.one(INSIGHTS).id
    assert workspace.get("containerRegistry") == plan.one(REGISTRY).id
    assert workspace.get("systemDatastoresAuthMode") == "identity"
    insights = plan.one(INSIGHTS)
    assert insights.get("ingestionMode") == "LogAnalytics"
    assert insights.get("workspaceResourceId") == plan.one(LOGS).id


def test_cluster_scales_from_config_as_its_user_assigned_identity(plan: PlanView) -> None:
    config = config_of(plan.stack)
    cluster, identity = plan.one(COMPUTE), plan.one(UAI)
    assert cluster.get("workspaceName") == plan.one(WORKSPACE).get("workspaceName")
    assert cluster.get("identity") == {
        "type": "UserAssigned",
        "userAssignedIdentities": [identity.id],
    }
    compute = cluster.get("properties.properties")
    assert compute["scaleSettings"] == {
        "minNodeCount": config.cluster_min_nodes,
        "maxNodeCount": config.cluster_max_nodes,
        "nodeIdleTimeBeforeScaleDown": config.cluster_idle_time_before_scale_down,
    }
    assert compute["vmSize"] == config.cluster_vm_size
    assert compute["vmPriority"] == config.cluster_vm_priority
    assert compute["remoteLoginPortPublicAccess"] == "Disabled"
    assert cluster.get("properties.disableLocalAuth") is True


def test_cluster_identity_holds_each_role_on_the_right_scope(plan: PlanView) -> None:
    identity = plan.one(UAI)
    granted = role_ids(plan, principal(plan, UAI, identity.name))
    account, registry = plan.one(STORAGE).id, plan.one(REGISTRY).id
    assert granted == {
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe": account,  # Storage Blob Data Contributor
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88": account,  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": account,  # Storage Table Data Contributor
        "7f951dda-4ed3-4680-a7ca-43fe172d538d": registry,  # AcrPull
        "3913510d-42f4-4e42-8a64-420c390055eb": plan.one(INSIGHTS).id,  # Monitoring Metrics Pub.
    }
    for role in plan.of_type(ROLE):
        assert role.get("roleDefinitionId").startswith(
            "/subscriptions/11111111-1111-4111-8111-111111111111/providers/"
            "Microsoft.Authorization/roleDefinitions/"
        ), f"{role}: role definition id"


DATA_ACCESS_WAIT = "pulumi-python:dynamic/batchscore:DataAccessWait"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
DEPLOYER = "33333333-3333-4333-8333-333333333333"  # the mocks' deploying identity


def test_the_deployer_holds_blob_data_contributor_on_the_stack_account(plan: PlanView) -> None:
    account = plan.one(STORAGE)
    (grant,) = [r for r in plan.of_type(ROLE) if r.get("principalId") == DEPLOYER]
    assert grant.get("roleDefinitionId").endswith(BLOB_DATA_CONTRIBUTOR), f"{grant}: role"
    assert grant.get("scope") == account.id, f"{grant}: scope {grant.get('scope')}"
    assert grant.get("principalType") == config_of(plan.stack).deployer_principal_type
    wait = plan.one(DATA_ACCESS_WAIT)
    assert wait.get("assignmentId") == grant.id, f"{wait.name} waits for another assignment"
    assert (wait.get("accountName"), wait.get("scope")) == (account.get("accountName"), account.id)


def test_what_acts_as_the_deployer_on_storage_waits_for_its_role(plan: PlanView) -> None:
    """Component upload (the scoring pipeline) and Capture's linked access check (the hub)."""
    wait = plan.one(DATA_ACCESS_WAIT).name
    assert wait in plan.one("batchscore:index:ScoringPipeline").depends_on
    assert wait in plan.one(HUB).depends_on
    assert "ingestion-capture-writer" in plan.one(HUB).depends_on


def test_datastores_are_created_after_their_containers(plan: PlanView) -> None:
    for name in ("models", "predictions"):
        datastore = plan.one(DATASTORE, f"ml-{name}-datastore")
        assert f"storage-{name}" in datastore.depends_on, f"{datastore} before its container"


def test_explicit_dependencies_order_what_inputs_alone_would_not(plan: PlanView) -> None:
    """The plan records `depends_on` beyond the inputs: what `pulumi up` waits for."""
    cluster_roles = {r.name for r in plan.of_type(ROLE) if r.name.startswith("ml-cluster-")}
    assert cluster_roles <= set(plan.one(COMPUTE).depends_on), "nodes start before their roles"
    assert "stream-eventhub-receiver" in plan.one(SA_INPUT).depends_on
    assert "sql-bootstrap-tsql" in plan.one(JOB_START).depends_on, "job starts before its table"
    assert not plan.one(STORAGE).depends_on


def test_datastores_point_at_models_and_predictions_without_credentials(plan: PlanView) -> None:
    account = plan.one(STORAGE).get("accountName")
    datastores = {d.get("name"): d for d in plan.of_type(DATASTORE)}
    assert set(datastores) == {"models", "predictions"}
    for name, datastore in datastores.items():
        properties = datastore.get("properties")
        assert properties["containerName"] == name, f"{datastore}: container"
        assert properties["accountName"] == account, f"{datastore}: account"
        assert properties["credentials"] == {"credentialsType": "None"}, f"{datastore}"
        assert datastore.get("workspaceName") == plan.one(WORKSPACE).get("workspaceName")


# --- diagnostics and protection ----------------------------------------------------------------
def test_every_service_sends_diagnostics_to_log_analytics(plan: PlanView) -> None:
    workspace_id = plan.one(LOGS).id
    settings = {d.get("resourceUri"): d for d in plan.of_type(DIAGNOSTICS)}
    all_logs = [{"categoryGroup": "allLogs", "enabled": True}]
    expected = {
        plan.one(t).id: (str(plan.one(t)), all_logs, "AllMetrics")
        for t in (NAMESPACE, JOB, SQL_DB, REGISTRY, VAULT, WORKSPACE, LOGS)
    }
    account = plan.one(STORAGE).id  # storage: metrics on the account, logs on its blob service
    expected[account] = ("storage account", None, "Transaction")
    expected[account + "/blobServices/default"] = ("blob service", all_logs, "Transaction")
    for resource_id, (label, logs, metric) in expected.items():
        setting = settings.get(resource_id)
        assert setting, f"{label} has no diagnostic setting"
        assert setting.get("workspaceId") == workspace_id, f"{label}: not to Log Analytics"
        assert setting.get("logs") == logs, f"{label}: logs {setting.get('logs')}"
        assert setting.get("metrics") == [{"category": metric, "enabled": True}], label
    assert len(settings) == len(expected), "a diagnostic setting points at an unexpected resource"


DATA_HOLDERS = {STORAGE, CONTAINER, SQL_SERVER, SQL_DB, NAMESPACE, REGISTRY, VAULT, LOGS, WORKSPACE}


def test_prod_protects_every_data_holding_resource_and_dev_none(plan: PlanView) -> None:
    for resource in plan:
        if resource.type in DATA_HOLDERS:
            assert resource.protect is (plan.stack == "prod"), f"{resource}: protect"
        else:
            assert resource.protect is False, f"{resource} holds no data: no protect"


# --- post-deploy: bootstrap, job start, pipeline schedule --------------------------------------
SQL_BOOTSTRAP = "pulumi-python:dynamic/batchscore:SqlBootstrap"
JOB_START = "pulumi-python:dynamic/batchscore:StreamJobStart"
SCORING = "pulumi-python:dynamic/batchscore:ScoringPipeline"


def _name_of(resource_id: str) -> str:
    return resource_id.rsplit("/", 1)[1]


def test_the_sql_bootstrap_creates_users_for_the_job_and_the_cluster(plan: PlanView) -> None:
    bootstrap = plan.one(SQL_BOOTSTRAP)
    server = plan.one(SQL_SERVER)
    assert bootstrap.get("serverFqdn") == f"{_name_of(server.id)}.database.windows.net", (
        f"{bootstrap.name} targets {bootstrap.get('serverFqdn')}"
    )
    assert bootstrap.get("database") == plan.one(SQL_DB).get("databaseName")
    assert bootstrap.get("jobIdentityName") == _name_of(plan.one(JOB).id), (
        f"{bootstrap.name}: the job's contained user must carry the job's name"
    )
    assert bootstrap.get("clusterIdentityName") == _name_of(plan.one(UAI).id), (
        f"{bootstrap.name}: the cluster's contained user must carry its identity's name"
    )


SYSTEM_IDENTITY = "pulumi-python:dynamic/batchscore:SystemIdentity"


def test_the_sql_users_get_the_identities_client_ids_as_sids(plan: PlanView) -> None:
    """No Microsoft Graph: the users are created from client ids the stack itself knows."""
    mocks = OfflineMocks("batchscore", plan.stack)
    bootstrap, job, identity = plan.one(SQL_BOOTSTRAP), plan.one(JOB), plan.one(UAI)
    lookup = plan.one(SYSTEM_IDENTITY)
    assert lookup.get("resourceId") == job.id, f"{lookup.name} looks up another resource"
    assert lookup.get("principalId") == principal(plan, JOB, job.name)
    # What Managed Identity answers for the job (the mocks), and the UAI's own client id.
    assert bootstrap.get("jobIdentityClientId") == mocks._guid(job.id, "client")
    assert bootstrap.get("clusterIdentityClientId") == mocks._guid(UAI, identity.name, "client")
    assert bootstrap.get("jobIdentityClientId") != bootstrap.get("clusterIdentityClientId")


def test_the_stream_job_start_names_the_job(plan: PlanView) -> None:
    start = plan.one(JOB_START)
    assert start.get("jobName") == _name_of(plan.one(JOB).id), f"{start.name} starts another job"
    assert start.get("configHash"), f"{start.name} must restart when the job's definition changes"


def test_the_scoring_pipeline_runs_the_stack_image_on_the_cluster(plan: PlanView) -> None:
    scoring = plan.one(SCORING)
    registry = _name_of(plan.one(REGISTRY).id)
    assert scoring.get("image").startswith(f"{registry}.azurecr.io/"), scoring.get("image")
    assert "@sha256:" in scoring.get("image"), f"{scoring.name}: the image must be pinned by digest"
    assert scoring.get("computeName") == plan.one(COMPUTE).get("computeName")
    assert scoring.get("workspaceName") == _name_of(plan.one(WORKSPACE).id)
    assert re.fullmatch(r"[0-9a-f-]{36}", scoring.get("identityClientId") or ""), (
        f"{scoring.name}: steps must run as the cluster's user-assigned identity"
    )
    assert scoring.get("settings")["lookbackMinutes"] > 0
    assert "password" not in str(scoring.inputs).lower(), f"{scoring.name} carries a secret"


TRAINING = "pulumi-python:dynamic/batchscore:TrainingPipeline"


def test_the_training_pipeline_runs_beside_scoring_with_the_stacks_training_settings(
    plan: PlanView,
) -> None:
    from components.config.training import TrainingSettings

    scoring, training = plan.one(SCORING), plan.one(TRAINING)
    for key in ("image", "computeName", "workspaceName", "identityClientId", "modelsDatastore"):
        assert training.get(key) == scoring.get(key), f"{training.name}: {key} differs"
    expected = TrainingSettings.from_stack(plan.stack, ROOT).to_mapping()
    assert training.get("training") == expected
    assert training.get("scheduleNamePrefix") != scoring.get("scheduleNamePrefix")
    assert "password" not in str(training.inputs).lower(), f"{training.name} carries a secret"


def test_the_publish_step_sends_run_summaries_to_the_stacks_application_insights(
    plan: PlanView,
) -> None:
    telemetry = plan.one(SCORING).get("telemetryConnectionString")
    key = OfflineMocks("batchscore", plan.stack)._guid(
        INSIGHTS, "ml-insights", "instrumentation-key"
    )
    assert telemetry.startswith(f"InstrumentationKey={key};IngestionEndpoint=https://"), telemetry
    assert plan.one(INSIGHTS).get("disableLocalAuth") is True, "ingestion must need a token"
