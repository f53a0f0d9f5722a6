"""Every Log Analytics query of the alert rules and the workbook, in one place.

Each query reads one table of :data:`components.shared.log_tables.LOG_TABLES` and names only
its columns (``tests/components/test_monitoring_queries.py`` checks it), filtered to this stack's
resources by id: the scope's values (``$ml_workspace_id`` ...) are filled in when the ids are
known (:meth:`Query.render`). KQL has no ``$``, so ``string.Template`` cannot clash with it.
Resource ids are compared with ``=~`` (case-insensitive): Azure Monitor stores
``_ResourceId`` in its own casing.

The run summary's fields (``Properties.status``, ``Measurements.pairs_failed`` ...) are the
contract of :mod:`scoring.telemetry`; the test holds both in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template
from typing import TYPE_CHECKING

from scoring.telemetry import EVENT_NAME, TRAINING_EVENT_NAME

if TYPE_CHECKING:  # the queries themselves need no Pulumi
    import pulumi


@dataclass(frozen=True)
class QueryScope:
    """The resources of this stack the queries filter on."""

    ml_workspace_id: str
    app_insights_id: str
    stream_job_id: str
    cluster_name: str

    @classmethod
    def of(
        cls,
        ml_workspace_id: pulumi.Input[str],
        app_insights_id: pulumi.Input[str],
        stream_job_id: pulumi.Input[str],
        cluster_name: pulumi.Input[str],
    ) -> pulumi.Output[QueryScope]:
        """The scope once the resources' ids are known."""
        import pulumi

        ids = (ml_workspace_id, app_insights_id, stream_job_id, cluster_name)
        return pulumi.Output.all(*ids).apply(lambda values: cls(*values))


@dataclass(frozen=True)
class Query:
    """One KQL query over one table; ``$name`` placeholders come from the scope and values."""

    name: str
    table: str
    template: str

    def render(self, scope: QueryScope, **values: object) -> str:
        text = Template(self.template).substitute(
            event=EVENT_NAME,
            training_event=TRAINING_EVENT_NAME,
            **vars(scope),
            **{k: str(v) for k, v in values.items()},
        )
        return text.strip() + "\n"


_SCORING_EVENTS = """\
AppEvents
| where _ResourceId =~ "$app_insights_id"
| where Name == "$event"
"""
_ROOT_RUNS = """\
AmlRunStatusChangedEvent
| where _ResourceId =~ "$ml_workspace_id"
| where isempty(ParentRunId) or RunId == RootRunId
"""
_STREAM_METRIC = """\
AzureMetrics
| where _ResourceId =~ "$stream_job_id"
"""

# --- alert rules ------------------------------------------------------------------------------
# A pipeline job (the root run, not one of its steps) reached Failed.
RUN_FAILED = Query(
    "run-failed",
    "AmlRunStatusChangedEvent",
    _ROOT_RUNS
    + """\
| where Status == "Failed"
| project TimeGenerated, RunId, Status, Message
""",
)
# How many pipeline jobs changed status in the window: 0 means none started.
RUN_MISSING = Query(
    "run-missing",
    "AmlRunStatusChangedEvent",
    _ROOT_RUNS
    + """\
| summarize Runs = dcount(RunId)
""",
)
# A run scored an empty window: no readings reached SQL for it.
EMPTY_WINDOW = Query(
    "empty-window",
    "AppEvents",
    _SCORING_EVENTS
    + """\
| where tostring(Properties.status) == "empty_window"
| project TimeGenerated, Window = tostring(Properties.window),
    RowsExtracted = todouble(Measurements.rows_extracted)
""",
)
# A run in which more than $failed_pairs_percent percent of the pairs were not scored.
FAILED_PAIRS = Query(
    "failed-pairs",
    "AppEvents",
    _SCORING_EVENTS
    + """\
| extend Pairs = todouble(Measurements.pairs), PairsFailed = todouble(Measurements.pairs_failed)
| where Pairs > 0 and PairsFailed * 100.0 > Pairs * $failed_pairs_percent
| project TimeGenerated, Window = tostring(Properties.window), Status = tostring(Properties.status),
    Pairs, PairsFailed, FailedPairs = tostring(Properties.failed_pairs_sample)
""",
)
# A run in which more than $drifted_pairs_percent percent of the pairs whose drift is known
# (their models have a baseline, enough rows) drifted from their models' baselines.
DRIFTED_PAIRS = Query(
    "drifted-pairs",
    "AppEvents",
    _SCORING_EVENTS
    + """\
| extend DriftPairs = todouble(Measurements.drift_pairs),
    DriftedPairs = todouble(Measurements.drifted_pairs)
| where DriftPairs > 0 and DriftedPairs * 100.0 > DriftPairs * $drifted_pairs_percent
| project TimeGenerated, Window = tostring(Properties.window), DriftPairs, DriftedPairs,
    Statistic = tostring(Properties.drift_statistic),
    WorstPairs = tostring(Properties.drift_worst_sample)
""",
)

# A training run failed, or rejected (or failed to train) more than $rejected_percent percent
# of its pairs (scoring.steps.promote's summary; a run that fails before promoting sends no
# event: RUN_FAILED sees its pipeline job instead).
TRAINING_REJECTED = Query(
    "training-rejected",
    "AppEvents",
    """\
AppEvents
| where _ResourceId =~ "$app_insights_id"
| where Name == "$training_event"
| extend Status = tostring(Properties.status),
    RejectedPercent = todouble(Measurements.rejected_percent)
| where Status == "failed" or RejectedPercent > $rejected_percent
| project TimeGenerated, Status, RejectedPercent, Generation = tostring(Properties.generation),
    Rejected = todouble(Measurements.rejected), Failed = todouble(Measurements.failed),
    Failure = tostring(Properties.failure)
""",
)


def _stream_total(name: str, metric: str) -> Query:
    """How many `metric` the Stream Analytics job counted in the window: one row, 0 if none."""
    return Query(
        name,
        "AzureMetrics",
        _STREAM_METRIC + f'| where MetricName == "{metric}"\n| summarize {metric} = sum(Total)\n',
    )


# Input events the Stream Analytics job read in the window (0 also when it is stopped).
STREAM_NO_INPUT = _stream_total("stream-no-input", "InputEvents")
# Rows the job wrote to its only output, dbo.SensorReadings: one per pair and window.
INGESTION_STALLED = _stream_total("ingestion-stalled", "OutputEvents")
# The cluster reported an error while creating or resizing (quota, allocation, ...).
CLUSTER_CANNOT_SCALE = Query(
    "cluster-cannot-scale",
    "AmlComputeClusterEvent",
    """\
AmlComputeClusterEvent
| where ClusterName =~ "$cluster_name"
| where isnotempty(ClusterErrorCodes)
| project TimeGenerated, ClusterName, ClusterErrorCodes, AllocationState, CurrentNodeCount,
    TargetNodeCount, QuotaAllocated, QuotaUtilized, VmSize, VmPriority
""",
)

# --- the workbook --------------------------------------------------------------------------
RUNS_PER_DAY = Query(
    "runs-per-day",
    "AppEvents",
    _SCORING_EVENTS
    + """\
| summarize Runs = count() by Day = bin(TimeGenerated, 1d), Status = tostring(Properties.status)
| order by Day asc
""",
)
FAILED_PAIRS_PER_WINDOW = Query(
    "failed-pairs-per-window",
    "AppEvents",
    _SCORING_EVENTS
    + """\
| summarize arg_max(TimeGenerated, *) by Window = tostring(Properties.window_end)
| project WindowEnd = todatetime(Window), FailedPairs = todouble(Measurements.pairs_failed),
    Pairs = todouble(Measurements.pairs)
| order by WindowEnd asc
""",
)
ANOMALIES_PER_WINDOW = Query(
    "anomalies-per-window",
    "AppEvents",
    _SCORING_EVENTS
    + """\
| summarize arg_max(TimeGenerated, *) by Window = tostring(Properties.window_end)
| project WindowEnd = todatetime(Window), Anomalies = todouble(Measurements.anomalies)
| order by WindowEnd asc
""",
)
STREAM_INPUT_RATE = Query(
    "stream-input-rate",
    "AzureMetrics",
    _STREAM_METRIC
    + """\
| where MetricName == "InputEvents"
| summarize InputEvents = sum(Total) by bin(TimeGenerated, 5m)
| order by TimeGenerated asc
""",
)
LATEST_RUNS = Query(
    "latest-runs",
    "AppEvents",
    _SCORING_EVENTS
    + """\
| project TimeGenerated, Window = tostring(Properties.window), Status = tostring(Properties.status),
    RowsExtracted = todouble(Measurements.rows_extracted),
    Anomalies = todouble(Measurements.anomalies), PairsFailed = todouble(Measurements.pairs_failed),
    LatencySeconds = todouble(Measurements.latency_seconds),
    ModelVersion = tostring(Properties.model_version), Failure = tostring(Properties.failure)
| order by TimeGenerated desc
| take 50
""",
)

ALERT_QUERIES = (
    RUN_FAILED,
    RUN_MISSING,
    EMPTY_WINDOW,
    FAILED_PAIRS,
    TRAINING_REJECTED,
    DRIFTED_PAIRS,
    STREAM_NO_INPUT,
    INGESTION_STALLED,
    CLUSTER_CANNOT_SCALE,
)
WORKBOOK_QUERIES = (
    RUNS_PER_DAY,
    FAILED_PAIRS_PER_WINDOW,
    ANOMALIES_PER_WINDOW,
    STREAM_INPUT_RATE,
    LATEST_RUNS,
)
ALL_QUERIES = ALERT_QUERIES + WORKBOOK_QUERIES
