"""The Log Analytics tables the alert rules and the workbook read, and who writes them.

Each entry names the columns the table has, as Microsoft's table reference lists them, and
the resource and diagnostic setting (or ingestion path) of this stack that fills it. The
queries may name only these tables and columns: ``tests/components/test_monitoring_queries.py``
checks every query against this list, and checks the plan for each writer's setting.

Sources (learn.microsoft.com; the text lives in MicrosoftDocs/azure-monitor-docs under
``articles/azure-monitor/reference/``):

* ``tables/amlrunstatuschangedevent`` and ``tables/amlcomputeclusterevent`` (07/2026):
  resource type ``microsoft.machinelearningservices/workspaces``. The workspace's diagnostic
  categories ``AmlRunStatusChangedEvent`` and ``AmlComputeClusterEvent`` write the tables of
  the same name (``supported-logs/microsoft-machinelearningservices-workspaces-logs``); the
  stack's setting sends the category group ``allLogs``, which holds both.
* ``tables/azuremetrics`` (columns: MicrosoftDocs/azure-reference-other,
  ``azure-monitor-ref/tables/includes/azuremetrics-include.md``): what ``AllMetrics`` of a
  diagnostic setting writes, here the Stream Analytics job's platform metrics (``InputEvents``,
  ``OutputEvents``: ``supported-metrics/microsoft-streamanalytics-streamingjobs-metrics``).
* ``tables/appevents`` (07/2026): custom events of a workspace-based Application Insights
  component land in its Log Analytics workspace; the publish step sends one per run
  (:mod:`scoring.telemetry`). ``Properties`` and ``Measurements`` are dynamic columns: what is
  inside them is the run summary's contract, checked against :mod:`scoring.telemetry`.

Only the columns the reference lists as current are kept (AzureMetrics' deprecated ones are
left out so no query starts to rely on them).
"""

from __future__ import annotations

from dataclasses import dataclass

ML_WORKSPACE = "azure-native:machinelearningservices:Workspace"
STREAMING_JOB = "azure-native:streamanalytics:StreamingJob"
APP_INSIGHTS = "azure-native:applicationinsights:Component"


@dataclass(frozen=True)
class LogTable:
    """One table: its columns and what fills it in this stack."""

    name: str
    columns: frozenset[str]
    written_by: str  # the resource type that fills it
    through: str  # "allLogs" / "AllMetrics" (its diagnostic setting) or "workspace-based"
    reference: str

    def has(self, column: str) -> bool:
        return column in self.columns


def _columns(text: str) -> frozenset[str]:
    return frozenset(text.split())


_COMMON = "TimeGenerated Type TenantId SourceSystem _ResourceId _SubscriptionId _BilledSize"
_DOCS = "https://learn.microsoft.com/azure/azure-monitor/reference/tables/"

LOG_TABLES: dict[str, LogTable] = {
    table.name: table
    for table in (
        LogTable(
            "AmlRunStatusChangedEvent",
            _columns(
                f"{_COMMON} _IsBillable CallerIpAddress CorrelationId DurationMs Identity Level "
                "Location Message OperationName OperationVersion ParentRunId ResultDescription "
                "ResultSignature ResultType RootRunId RunId Status TriggeringUserName "
                "WorkspaceId WorkspaceName"
            ),
            ML_WORKSPACE,
            "allLogs",
            _DOCS + "amlrunstatuschangedevent",
        ),
        LogTable(
            "AmlComputeClusterEvent",
            _columns(
                f"{_COMMON} _IsBillable AllocationState AllocationStateTransitionTime "
                "ClusterErrorCodes ClusterName ClusterType CoreCount CreatedBy "
                "CreationApiVersion CurrentNodeCount EventType IdleNodeCount InitialNodeCount "
                "InternalOperationName IsResizeGrow LeavingNodeCount MaximumNodeCount "
                "MinimumNodeCount NodeDeallocationOption NodeIdleTimeSecondsBeforeScaleDown "
                "Offer OperationName PreemptedNodeCount PreparingNodeCount ProvisioningState "
                "Publisher QuotaAllocated QuotaUtilized ResultSignature RunningNodeCount "
                "ScalingType Sku SubnetId TargetNodeCount UnusableNodeCount Version "
                "VmFamilyName VmPriority VmSize"
            ),
            ML_WORKSPACE,
            "allLogs",
            _DOCS + "amlcomputeclusterevent",
        ),
        LogTable(
            "AzureMetrics",
            _columns(
                f"{_COMMON} _IsBillable Average Count Maximum MetricName Minimum Resource "
                "ResourceGroup ResourceId ResourceProvider SubscriptionId TimeGrain Total "
                "UnitName"
            ),
            STREAMING_JOB,
            "AllMetrics",
            _DOCS + "azuremetrics",
        ),
        LogTable(
            "AppEvents",
            _columns(
                f"{_COMMON} _IsBillable AppRoleInstance AppRoleName AppVersion ClientBrowser "
                "ClientCity ClientCountryOrRegion ClientIP ClientModel ClientOS "
                "ClientStateOrProvince ClientType IKey ItemCount Measurements Name OperationId "
                "OperationName ParentId Properties ResourceGUID SDKVersion SessionId "
                "SyntheticSource UserAccountId UserAuthenticatedId UserId"
            ),
            APP_INSIGHTS,
            "workspace-based",
            _DOCS + "appevents",
        ),
    )
}

#: the dynamic columns of AppEvents whose keys are the run summary's (scoring.telemetry)
DYNAMIC_COLUMNS = {("AppEvents", "Properties"), ("AppEvents", "Measurements")}
