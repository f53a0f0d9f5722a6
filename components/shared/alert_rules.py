"""The alert rules of a stack, as data: what each watches, how often, how severe, when it fires.

:func:`alert_rules` turns the alerting part of the stack config
(:class:`components.config.alerts.AlertSettings`) into the rules the ``Alerting`` component
declares: log search rules over the Log Analytics workspace
(:mod:`components.shared.monitoring_queries`), a metric rule on the Stream Analytics job's
platform metric ``Errors`` and activity log rules on the job. Every rule has a ``key``: the
README's runbook has a section per key (a test holds them in step).

Log search rules follow two patterns:

* **occurrence**: the query returns the offending rows; the rule fires on ``Count > 0``;
* **absence**: the query ends in ``summarize X = ...`` without ``by``, which returns one row
  even when nothing matched (then X is 0); the rule fires on ``Total(X) < 1``, so it does
  not depend on how the service treats an empty result.

All log and metric rules are stateful (``autoMitigate``): an alert resolves itself once its
condition is no longer met. Activity log rules are events and have no resolved state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.config.alerts import AlertSettings
from components.config.stack import (
    ALERT_FREQUENCY_MINUTES_MAX,
    ALERT_WINDOW_MINUTES_MAX,
    log_alert_window,
)
from components.shared import monitoring_queries as q

STREAM_NAMESPACE = "Microsoft.StreamAnalytics/streamingjobs"
# Metric alert rules take these windows and frequencies only (ARM `Microsoft.Insights/
# metricAlerts`: windowSize PT1M..PT24H, evaluationFrequency PT1M..PT1H), in minutes.
METRIC_WINDOWS = (1, 5, 15, 30, 60, 360, 720, 1440)
METRIC_FREQUENCIES = (1, 5, 15, 30, 60)


def iso_minutes(minutes: int) -> str:
    """An ISO-8601 duration (`PT15M`, `PT2H`, `P1D`) of whole minutes."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    if hours or mins:
        text += "T" + (f"{hours}H" if hours else "") + (f"{mins}M" if mins else "")
    return text


def allowed_window(minutes: int) -> int:
    """``minutes`` rounded up to a window a scheduled query rule accepts (at most 2 days): the
    stack config refuses other values, this keeps settings built in code deployable too."""
    return log_alert_window(minutes) or ALERT_WINDOW_MINUTES_MAX


@dataclass(frozen=True)
class LogAlertRule:
    """A log search alert rule over the Log Analytics workspace."""

    key: str
    title: str
    description: str
    query: q.Query
    severity: int
    window_minutes: int
    frequency_minutes: int
    operator: str  # GreaterThan | LessThan: the ARM strings (not monitor.ConditionOperator)
    threshold: float
    measure: str | None = None  # the column of an absence query (aggregated as Total)
    values: dict[str, object] = field(default_factory=dict)  # the query's own $values
    enabled: bool = True

    @property
    def time_aggregation(self) -> str:
        return "Total" if self.measure else "Count"


@dataclass(frozen=True)
class MetricAlertRule:
    """A metric alert rule on the Stream Analytics job's platform metrics."""

    key: str
    title: str
    description: str
    metric_name: str
    aggregation: str
    operator: str
    threshold: float
    severity: int
    window_minutes: int
    frequency_minutes: int
    metric_namespace: str = STREAM_NAMESPACE


@dataclass(frozen=True)
class ActivityLogAlertRule:
    """An activity log alert on the Stream Analytics job: ``all_of`` (field, value) pairs,
    plus one ``any_of`` group of values for ``any_field``."""

    key: str
    title: str
    description: str
    all_of: tuple[tuple[str, str], ...]
    any_field: str | None = None
    any_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertRules:
    log: tuple[LogAlertRule, ...]
    metric: tuple[MetricAlertRule, ...]
    activity: tuple[ActivityLogAlertRule, ...]

    def keys(self) -> list[str]:
        return [r.key for r in (*self.log, *self.metric, *self.activity)]


def alert_rules(s: AlertSettings) -> AlertRules:
    """Every rule of the stack (the README's "Monitoring and alerts" says what to do on each)."""
    every = allowed_window(s.evaluation_minutes)
    missed_run = allowed_window(s.missed_run_window_minutes)
    no_input = allowed_window(s.no_input_minutes)
    stall = allowed_window(s.ingestion_stall_minutes)

    def often(window: int) -> int:  # no rule runs less often than its window
        return min(every, window, ALERT_FREQUENCY_MINUTES_MAX)

    log = (
        LogAlertRule(
            "scoring-run-failed",
            "Scoring run failed",
            "A scoring pipeline job ended Failed.",
            q.RUN_FAILED,
            s.severity_run_failed,
            every,
            every,
            "GreaterThan",
            0,
        ),
        LogAlertRule(
            "scoring-run-missing",
            "No scoring run started on schedule",
            f"No scoring pipeline job changed status in {missed_run} minutes "
            "(the schedule's longest gap plus the grace, rounded up to a window Azure takes): "
            "the schedule is disabled, or jobs cannot be created.",
            q.RUN_MISSING,
            s.severity_run_failed,
            missed_run,
            often(missed_run),
            "LessThan",
            1,
            measure="Runs",
            enabled=s.watch_schedule,
        ),
        LogAlertRule(
            "scoring-empty-window",
            "A scoring run found no readings",
            "A run's window had no readings in SQL: ingestion was down for it.",
            q.EMPTY_WINDOW,
            s.severity_run_quality,
            every,
            every,
            "GreaterThan",
            0,
            enabled=s.run_summaries,
        ),
        LogAlertRule(
            "scoring-failed-pairs",
            "Too many pairs failed to score",
            f"More than {s.failed_pairs_percent}% of a run's (Device, Sensor) pairs were not "
            "scored.",
            q.FAILED_PAIRS,
            s.severity_run_quality,
            every,
            every,
            "GreaterThan",
            0,
            values={"failed_pairs_percent": s.failed_pairs_percent},
            enabled=s.run_summaries,
        ),
        LogAlertRule(
            "training-rejected",
            "Training failed or rejected too many candidates",
            f"A training run failed, or more than {s.training_rejected_percent}% of its pairs' "
            "candidates were rejected or failed to train (the current models stay).",
            q.TRAINING_REJECTED,
            s.severity_run_quality,
            every,
            every,
            "GreaterThan",
            0,
            values={"rejected_percent": s.training_rejected_percent},
        ),
        LogAlertRule(
            "scoring-drifted-pairs",
            "Many pairs drifted from their models",
            f"More than {s.drifted_pairs_percent}% of a run's (Device, Sensor) pairs drifted "
            "from their models' training baselines: retrain them.",
            q.DRIFTED_PAIRS,
            s.severity_run_quality,
            every,
            every,
            "GreaterThan",
            0,
            values={"drifted_pairs_percent": s.drifted_pairs_percent},
            enabled=s.run_summaries,
        ),
        LogAlertRule(
            "stream-no-input",
            "Stream Analytics reads no events",
            f"The Stream Analytics job read no input event in {no_input} minutes "
            "(devices silent, Event Hubs unreachable, or the job stopped).",
            q.STREAM_NO_INPUT,
            s.severity_stream,
            no_input,
            often(no_input),
            "LessThan",
            1,
            measure="InputEvents",
        ),
        LogAlertRule(
            "ingestion-stalled",
            "No new windows reach SQL",
            f"The Stream Analytics job wrote no row to dbo.SensorReadings in {stall} minutes.",
            q.INGESTION_STALLED,
            s.severity_stream,
            stall,
            often(stall),
            "LessThan",
            1,
            measure="OutputEvents",
        ),
        LogAlertRule(
            "cluster-cannot-scale",
            "The scoring cluster cannot scale",
            "The compute cluster reported an error while creating or resizing (quota, "
            "allocation): scoring runs wait or fail.",
            q.CLUSTER_CANNOT_SCALE,
            s.severity_cluster,
            every,
            every,
            "GreaterThan",
            0,
        ),
    )
    metric_window = min((w for w in METRIC_WINDOWS if w >= every), default=METRIC_WINDOWS[-1])
    metric = (
        MetricAlertRule(
            "stream-runtime-errors",
            "Stream Analytics runtime errors",
            "The Stream Analytics job reported runtime errors (input, conversion or output).",
            "Errors",
            "Total",
            "GreaterThan",
            0,
            s.severity_stream,
            metric_window,
            max(f for f in METRIC_FREQUENCIES if f <= min(every, metric_window)),
        ),
    )
    activity = (
        ActivityLogAlertRule(
            "stream-job-unhealthy",
            "Stream Analytics job unavailable",
            "Resource Health reports the Stream Analytics job Unavailable or Degraded.",
            (("category", "ResourceHealth"),),
            "properties.currentHealthStatus",
            ("Unavailable", "Degraded"),
        ),
        ActivityLogAlertRule(
            "stream-job-stopped",
            "Stream Analytics job stopped",
            "Someone or something stopped the Stream Analytics job (a deployment stops and "
            "restarts it).",
            (
                ("category", "Administrative"),
                ("operationName", "Microsoft.StreamAnalytics/streamingjobs/Stop/action"),
            ),
        ),
    )
    return AlertRules(log, metric, activity)
