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
left out so no query starts to rely on them), each with the type the reference gives it: the
test suite binds every query against these schemas with Microsoft's own Kusto parser
(``tests/components/kusto_check.js``), so a wrong column or a type misuse fails there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ML_WORKSPACE = "azure-native:machinelearningservices:Workspace"
STREAMING_JOB = "azure-native:streamanalytics:StreamingJob"
APP_INSIGHTS = "azure-native:applicationinsights:Component"


@dataclass(frozen=True)
class LogTable:
    """One table: its columns with their Kusto types, and what fills it in this stack."""

    name: str
    #: column -> Kusto type (string, int, real, datetime, dynamic); a table hashes by its name
    column_types: Mapping[str, str] = field(hash=False)
    written_by: str  # the resource type that fills it
    through: str  # "allLogs" / "AllMetrics" (its diagnostic setting) or "workspace-based"
    reference: str

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(self.column_types)

    def has(self, column: str) -> bool:
        return column in self.column_types

    @property
    def kusto_schema(self) -> str:
        """The table's schema as Kusto writes one: ``(TimeGenerated:datetime, ...)``."""
        return "(" + ", ".join(f"{c}:{t}" for c, t in sorted(self.column_types.items())) + ")"


def _columns(text: str) -> Mapping[str, str]:
    """``"Name Count:int When:datetime"`` -> {column: type}; a name without ``:type`` is a
    string, the type of most columns in the reference."""
    pairs = (word.partition(":") for word in text.split())
    return MappingProxyType({name: kind or "string" for name, _, kind in pairs})


# The columns every Log Analytics table has (the reference lists them under each table).
_COMMON = (
    "TimeGenerated:datetime Type TenantId SourceSystem _ResourceId _SubscriptionId "
    "_BilledSize:real _IsBillable"
)
_DOCS = "https://learn.microsoft.com/azure/azure-monitor/reference/tables/"

LOG_TABLES: dict[str, LogTable] = {
    table.name: table
    for table in (
        LogTable(
            "AmlRunStatusChangedEvent",
            _columns(
                f"{_COMMON} CallerIpAddress CorrelationId DurationMs Identity Level "
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
                f"{_COMMON} AllocationState AllocationStateTransitionTime:datetime "
                "ClusterErrorCodes ClusterName ClusterType CoreCount:int CreatedBy "
                "CreationApiVersion CurrentNodeCount:int EventType IdleNodeCount:int "
                "InitialNodeCount:int InternalOperationName IsResizeGrow LeavingNodeCount:int "
                "MaximumNodeCount:int MinimumNodeCount:int NodeDeallocationOption "
                "NodeIdleTimeSecondsBeforeScaleDown:int Offer OperationName PreemptedNodeCount "
                "PreparingNodeCount:int ProvisioningState Publisher QuotaAllocated QuotaUtilized "
                "ResultSignature RunningNodeCount:int ScalingType Sku SubnetId "
                "TargetNodeCount:int UnusableNodeCount:int Version VmFamilyName VmPriority VmSize"
            ),
            ML_WORKSPACE,
            "allLogs",
            _DOCS + "amlcomputeclusterevent",
        ),
        LogTable(
            "AzureMetrics",
            _columns(
                f"{_COMMON} Average:real Count:real Maximum:real MetricName Minimum:real "
                "Resource ResourceGroup ResourceId ResourceProvider SubscriptionId TimeGrain "
                "Total:real UnitName"
            ),
            STREAMING_JOB,
            "AllMetrics",
            _DOCS + "azuremetrics",
        ),
        LogTable(
            "AppEvents",
            _columns(
                f"{_COMMON} AppRoleInstance AppRoleName AppVersion ClientBrowser "
                "ClientCity ClientCountryOrRegion ClientIP ClientModel ClientOS "
                "ClientStateOrProvince ClientType IKey ItemCount:int Measurements:dynamic Name "
                "OperationId OperationName ParentId Properties:dynamic ResourceGUID SDKVersion "
                "SessionId SyntheticSource UserAccountId UserAuthenticatedId UserId"
            ),
            APP_INSIGHTS,
            "workspace-based",
            _DOCS + "appevents",
        ),
    )
}

#: the dynamic columns of AppEvents whose keys are the run summary's (scoring.telemetry)
DYNAMIC_COLUMNS = {("AppEvents", "Properties"), ("AppEvents", "Measurements")}
