"""The alert rules of a stack, as data: what each watches, how often, how severe, when it fires.

:class:`AlertSettings` is the alerting part of the stack config, checked (the missed-run
window follows the schedule's cron). :func:`alert_rules` turns it into the rules the
``Alerting`` component declares: log search rules over the Log Analytics workspace
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
from datetime import datetime, timedelta

from batchscore.aml.settings import PipelineSettings
from components.config import (
    ALERT_FREQUENCY_MINUTES_MAX,
    ALERT_WINDOW_MINUTES_MAX,
    StackConfig,
)
from components.shared import monitoring_queries as q

STREAM_NAMESPACE = "Microsoft.StreamAnalytics/streamingjobs"
# Metric alert rules take these windows and frequencies only (ARM `Microsoft.Insights/
# metricAlerts`: windowSize PT1M..PT24H, evaluationFrequency PT1M..PT1H), in minutes.
METRIC_WINDOWS = (1, 5, 15, 30, 60, 360, 720, 1440)
METRIC_FREQUENCIES = (1, 5, 15, 30, 60)
#: a week of cron triggers is enough to see every gap (Azure ML ignores days and months)
_CRON_HORIZON = timedelta(days=8)


@dataclass(frozen=True)
class AlertSettings:
    """The alerting knobs of one stack (see the README's configuration reference)."""

    emails: tuple[str, ...] = ()
    evaluation_minutes: int = 15
    missed_run_window_minutes: int = 90
    watch_schedule: bool = True
    #: why the missed-run rule is off although the schedule runs (the component warns)
    schedule_unwatched: str | None = None
    #: runs publish a summary (appendRows: true); without, the rules that read it are off
    run_summaries: bool = True
    failed_pairs_percent: int = 5
    no_input_minutes: int = 30
    ingestion_stall_minutes: int = 30
    severity_run_failed: int = 1
    severity_run_quality: int = 2
    severity_stream: int = 1
    severity_cluster: int = 2

    @classmethod
    def from_config(cls, config: StackConfig, pipeline: PipelineSettings) -> AlertSettings:
        """The settings from the stack config and the scoring pipeline's (the missed-run
        window is the cron's longest gap plus ``alertRunGraceMinutes``). A gap no log alert
        can look across (more than 2 days, e.g. a weekdays-only schedule) leaves that one rule
        off, with the reason in ``schedule_unwatched``: the schedule itself is fine."""
        schedule_cron, schedule_enabled = pipeline.schedule_cron, pipeline.schedule_enabled
        gap = longest_cron_gap_minutes(schedule_cron)
        window = gap + config.alert_run_grace_minutes
        unwatched = None
        if schedule_enabled and window > ALERT_WINDOW_MINUTES_MAX:
            unwatched = (
                f"scoring-run-missing is off: the schedule's longest gap ({gap} minutes, "
                f"scheduleCron {schedule_cron!r}) plus alertRunGraceMinutes "
                f"({config.alert_run_grace_minutes}) is {window} minutes, and a log alert looks "
                f"back at most {ALERT_WINDOW_MINUTES_MAX}"
            )
        return cls(
            emails=config.alert_emails,
            evaluation_minutes=config.alert_evaluation_minutes,
            missed_run_window_minutes=min(window, ALERT_WINDOW_MINUTES_MAX),
            watch_schedule=schedule_enabled and unwatched is None,
            schedule_unwatched=unwatched,
            run_summaries=pipeline.append_rows,
            failed_pairs_percent=config.alert_failed_pairs_percent,
            no_input_minutes=config.alert_no_input_minutes,
            ingestion_stall_minutes=config.alert_ingestion_stall_minutes,
            severity_run_failed=config.alert_severity_run_failed,
            severity_run_quality=config.alert_severity_run_quality,
            severity_stream=config.alert_severity_stream,
            severity_cluster=config.alert_severity_cluster,
        )


def longest_cron_gap_minutes(cron: str) -> int:
    """The longest time between two consecutive triggers of a 5-field cron, in minutes."""
    from croniter import croniter

    start = datetime(2024, 1, 1)  # a Monday; the gaps repeat every week
    it = croniter(cron, start - timedelta(seconds=1))
    times = [it.get_next(datetime)]
    while times[-1] < start + _CRON_HORIZON:
        times.append(it.get_next(datetime))
    return int(max((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)) // 60)


def iso_minutes(minutes: int) -> str:
    """An ISO-8601 duration (`PT15M`, `PT2H`, `P1D`) of whole minutes."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    if hours or mins:
        text += "T" + (f"{hours}H" if hours else "") + (f"{mins}M" if mins else "")
    return text


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
    every = s.evaluation_minutes

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
            f"No scoring pipeline job changed status in {s.missed_run_window_minutes} minutes "
            "(the schedule's longest gap plus the grace): the schedule is disabled, or jobs "
            "cannot be created.",
            q.RUN_MISSING,
            s.severity_run_failed,
            s.missed_run_window_minutes,
            often(s.missed_run_window_minutes),
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
            "stream-no-input",
            "Stream Analytics reads no events",
            f"The Stream Analytics job read no input event in {s.no_input_minutes} minutes "
            "(devices silent, Event Hubs unreachable, or the job stopped).",
            q.STREAM_NO_INPUT,
            s.severity_stream,
            s.no_input_minutes,
            often(s.no_input_minutes),
            "LessThan",
            1,
            measure="InputEvents",
        ),
        LogAlertRule(
            "ingestion-stalled",
            "No new windows reach SQL",
            f"The Stream Analytics job wrote no row to dbo.SensorReadings in "
            f"{s.ingestion_stall_minutes} minutes.",
            q.INGESTION_STALLED,
            s.severity_stream,
            s.ingestion_stall_minutes,
            often(s.ingestion_stall_minutes),
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
