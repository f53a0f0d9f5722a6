"""The batchscore stack: typed config once, the components, the outputs. Nothing else here."""

import pulumi
from pulumi_azure_native import authorization, resources

from components.alerting import Alerting, AlertingArgs
from components.config import ConfigError, StackSettings
from components.ingestion import Ingestion, IngestionArgs
from components.ml_workspace import MlWorkspace, MlWorkspaceArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.naming import GlobalNames, random_suffix
from components.network import Network, NetworkArgs
from components.operations_workbook import OperationsWorkbook, OperationsWorkbookArgs
from components.published_outputs import PublishedOutputs, PublishedOutputsArgs
from components.scoring_image import ScoringImage, ScoringImageArgs
from components.scoring_pipeline import ScoringPipeline, ScoringPipelineArgs
from components.sensor_database import EntraAdmin, SensorDatabase, SensorDatabaseArgs
from components.shared.monitoring_queries import QueryScope
from components.shared.placement import Placement, standard_tags
from components.shared.registry_auth import ACR_AUDIENCE
from components.shared.stack_outputs import export_stack_outputs
from components.sql_bootstrap import SqlBootstrap, SqlBootstrapArgs
from components.storage import Storage, StorageArgs
from components.stream_job import StreamJobStart, StreamJobStartArgs
from components.stream_processing import StreamProcessing, StreamProcessingArgs
from components.training_pipeline import TrainingPipeline, TrainingPipelineArgs

try:  # validated before any resource is declared
    settings = StackSettings.from_pulumi()
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None
config, pipeline_settings, alert_settings = settings.stack, settings.pipeline, settings.alerts
training_settings = settings.training

project, stack = pulumi.get_project(), pulumi.get_stack()
client = authorization.get_client_config_output()
names = GlobalNames.derive(project, stack, random_suffix("name-suffix").result)

group = resources.ResourceGroup(
    "resource-group",
    resource_group_name=names.resource_group,
    location=config.location,
    tags=standard_tags(project, stack),
)
place = Placement(group.name, group.location, standard_tags(project, stack))
protect = config.protect_data

monitoring = Monitoring(
    "monitoring", MonitoringArgs(place, retention_days=config.log_retention_days, protect=protect)
)
logs = monitoring.workspace_id

# Private networking (prod): the VNet and private DNS first; each component below puts its
# private endpoints there and turns its public access off (docs/networking.md).
private_link = None
if config.network_isolation:
    private_link = Network(
        "network",
        NetworkArgs(place, config.network_address_space, subnets=config.network_subnets),
    ).link

storage = Storage(
    "storage",
    StorageArgs(
        place,
        account_name=names.storage_account,
        sku=config.storage_sku,
        soft_delete_days=config.blob_soft_delete_days,
        log_analytics_workspace_id=logs,
        subscription_id=client.subscription_id,
        deployer_object_id=client.object_id,
        deployer_principal_type=config.deployer_principal_type,
        private_link=private_link,
        protect=protect,
    ),
)

ingestion = Ingestion(
    "ingestion",
    IngestionArgs(
        place,
        namespace_name=names.event_hubs_namespace,
        capacity=config.event_hubs_capacity,
        zone_redundant=config.event_hubs_zone_redundant,
        partition_count=config.event_hub_partition_count,
        retention_hours=config.event_hub_retention_hours,
        capture_interval_seconds=config.capture_interval_seconds,
        capture_size_limit_bytes=config.capture_size_limit_bytes,
        storage_account_id=storage.account_id,
        raw_container_name=storage.container_names["raw"],
        subscription_id=client.subscription_id,
        log_analytics_workspace_id=logs,
        capture_depends_on=[storage.deployer_data_access],
        private_link=private_link,
        protect=protect,
    ),
)

# No admin configured: whoever runs `pulumi up` is the Entra admin (the SQL bootstrap needs one).
sql_admin = EntraAdmin(
    login=config.sql_admin_login or f"{project}-{stack}-deployer",
    object_id=config.sql_admin_object_id or client.object_id,
    tenant_id=config.sql_admin_tenant_id or client.tenant_id,
    principal_type=config.sql_admin_principal_type,
)

database = SensorDatabase(
    "database",
    SensorDatabaseArgs(
        place,
        server_name=names.sql_server,
        admin=sql_admin,
        sku=config.sql_sku,
        serverless=config.sql_is_serverless,
        auto_pause_delay_minutes=config.sql_auto_pause_delay_minutes,
        max_size_gb=config.sql_max_size_gb,
        zone_redundant=config.sql_zone_redundant,
        backup_storage_redundancy=config.sql_backup_storage_redundancy,
        log_analytics_workspace_id=logs,
        firewall_ranges=config.sql_firewall_ranges,
        private_link=private_link,
        protect=protect,
    ),
)

stream = StreamProcessing(
    "stream",
    StreamProcessingArgs(
        place,
        window_minutes=config.stream_window_minutes,
        streaming_units=config.streaming_units,
        events_out_of_order_policy=config.events_out_of_order_policy,
        events_out_of_order_max_delay_seconds=config.events_out_of_order_max_delay_seconds,
        events_late_arrival_max_delay_seconds=config.events_late_arrival_max_delay_seconds,
        output_error_policy=config.output_error_policy,
        event_hubs_namespace_name=ingestion.namespace_name,
        event_hub_name=ingestion.hub_name,
        event_hub_id=ingestion.hub_id,
        consumer_group_name=ingestion.consumer_group_name,
        sql_server_fqdn=database.server_fqdn,
        sql_database_name=database.database_name,
        subscription_id=client.subscription_id,
        log_analytics_workspace_id=logs,
        network_isolation=config.network_isolation,
        event_hubs_namespace_id=ingestion.namespace_id,
        sql_server_id=database.server_id,
    ),
)

image = ScoringImage(
    "image",
    ScoringImageArgs(
        place,
        registry_name=names.container_registry,
        sku=config.registry_sku,
        zone_redundant=config.registry_zone_redundant,
        repository=config.image_repository,
        tag=stack,
        access_token=authorization.get_client_token_output(endpoint=ACR_AUDIENCE).token,
        tenant_id=client.tenant_id,
        subscription_id=client.subscription_id,
        log_analytics_workspace_id=logs,
        private_link=private_link,
        protect=protect,
    ),
)

ml = MlWorkspace(
    "ml",
    MlWorkspaceArgs(
        place,
        workspace_name=names.ml_workspace,
        key_vault_name=names.key_vault,
        tenant_id=client.tenant_id,
        subscription_id=client.subscription_id,
        log_analytics_workspace_id=logs,
        storage_account_id=storage.account_id,
        storage_account_name=storage.account_name,
        datastore_containers={"models": "models", "predictions": "predictions"},
        containers=storage.containers,
        registry_id=image.registry_id,
        key_vault_soft_delete_days=config.key_vault_soft_delete_days,
        vm_size=config.cluster_vm_size,
        vm_priority=config.cluster_vm_priority,
        min_nodes=config.cluster_min_nodes,
        max_nodes=config.cluster_max_nodes,
        idle_time_before_scale_down=config.cluster_idle_time_before_scale_down,
        private_link=private_link,
        sql_server_id=database.server_id,
        protect=protect,
    ),
)

# Post-deploy: the table and contained users, then the job start, then the schedule, so that
# after `pulumi up` a scheduled run finds everything it needs with no manual step.
bootstrap = SqlBootstrap(
    "sql-bootstrap",
    SqlBootstrapArgs(
        server_fqdn=database.server_fqdn,
        database=database.database_name,
        job_identity_name=stream.job_name,
        job_identity_client_id=stream.client_id,
        cluster_identity_name=ml.cluster_identity_name,
        cluster_identity_client_id=ml.cluster_identity_client_id,
    ),
    pulumi.ResourceOptions(depends_on=[database, stream, ml]),
)

stream_start = StreamJobStart(
    "stream-start",
    StreamJobStartArgs(
        subscription_id=client.subscription_id,
        resource_group_name=group.name,
        job_name=stream.job_name,
        config_hash=stream.config_hash,
        start_after=[bootstrap, stream],
    ),
)

pipeline_args = ScoringPipelineArgs(
    subscription_id=client.subscription_id,
    resource_group_name=group.name,
    workspace_name=ml.workspace_name,
    compute_name=ml.cluster_name,
    identity_client_id=ml.cluster_identity_client_id,
    image=image.image_ref,
    sql_server=database.server_fqdn,
    sql_database=database.database_name,
    models_datastore=ml.datastore_names["models"],
    predictions_datastore=ml.datastore_names["predictions"],
    storage_account_name=storage.account_name,
    settings=pipeline_settings,
    telemetry_connection_string=ml.app_insights_connection_string,
)
scoring = ScoringPipeline(
    "scoring",
    pipeline_args,
    # Registering the components uploads their code to the storage account as the deployer.
    pulumi.ResourceOptions(depends_on=[ml, bootstrap, storage.deployer_data_access]),
)

# Retraining on the same cluster: candidates gated per pair, the store's next generation.
training = TrainingPipeline(
    "training",
    TrainingPipelineArgs.beside(pipeline_args, training_settings),
    pulumi.ResourceOptions(depends_on=[ml, bootstrap, storage.deployer_data_access]),
)

# Operators see failed or missing runs, empty windows, the stream job and ingestion.
query_scope = QueryScope.of(ml.workspace_id, ml.app_insights_id, stream.job_id, ml.cluster_name)
Alerting(
    "alerting",
    AlertingArgs(
        place,
        alert_settings,
        log_analytics_workspace_id=logs,
        query_scope=query_scope,
        stream_job_id=stream.job_id,
        # Read as a secret (config validation refuses a webhook stored in plain text).
        webhook_url=pulumi.Config().get_secret("alertWebhookUrl")
        if config.alert_webhook_url
        else None,
    ),
)
OperationsWorkbook("operations", OperationsWorkbookArgs(place, logs, query_scope=query_scope))

outputs_document = export_stack_outputs(
    {
        "resourceGroupName": group.name,
        "storageAccountName": storage.account_name,
        "rawContainerUrl": storage.container_urls["raw"],
        "modelsContainerUrl": storage.container_urls["models"],
        "predictionsContainerUrl": storage.container_urls["predictions"],
        "eventHubsNamespaceFqdn": ingestion.namespace_fqdn,
        "eventHubName": ingestion.hub_name,
        "sqlServerFqdn": database.server_fqdn,
        "sqlDatabaseName": database.database_name,
        "registryLoginServer": image.login_server,
        "scoringImageRef": image.image_ref,
        "mlWorkspaceName": ml.workspace_name,
        "mlWorkspaceId": ml.workspace_id,
        "computeClusterName": ml.cluster_name,
        "streamJobName": stream.job_name,
        "scoringScheduleName": scoring.schedule_name,
        "trainingScheduleName": training.schedule_name,
    }
)
# The same document for teams without access to the state (contracts/stack-outputs.schema.json).
PublishedOutputs(
    "published-outputs",
    PublishedOutputsArgs(
        account_name=storage.account_name,
        container_name=storage.container_names["stack-outputs"],
        document=outputs_document,
        write_after=[storage.containers["stack-outputs"], storage.deployer_data_access],
    ),
)
