"""The alerting part of the stack config: the knobs of :mod:`components.shared.alert_rules`,
derived from the infrastructure config and the scoring pipeline's settings (the missed-run
window follows the schedule's cron)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from components.config.pipeline import PipelineSettings
from components.config.stack import ALERT_WINDOW_MINUTES_MAX, StackConfig, log_alert_window

#: a week of cron triggers is enough to see every gap (Azure ML ignores days and months)
_CRON_HORIZON = timedelta(days=8)


@dataclass(frozen=True)
class AlertSettings:
    """The alerting knobs of one stack (see the README's configuration reference)."""

    emails: tuple[str, ...] = ()
    evaluation_minutes: int = 15
    missed_run_window_minutes: int = 120
    watch_schedule: bool = True
    #: why the missed-run rule is off although the schedule runs (the component warns)
    schedule_unwatched: str | None = None
    #: runs publish a summary (appendRows: true); without, the rules that read it are off
    run_summaries: bool = True
    failed_pairs_percent: int = 5
    #: trainAlertRejectedPercent (the training settings'; set by StackSettings.of)
    training_rejected_percent: int = 20
    drifted_pairs_percent: int = 20
    no_input_minutes: int = 30
    ingestion_stall_minutes: int = 30
    severity_run_failed: int = 1
    severity_run_quality: int = 2
    severity_stream: int = 1
    severity_cluster: int = 2

    @classmethod
    def from_config(cls, config: StackConfig, pipeline: PipelineSettings) -> AlertSettings:
        """The settings from the stack config and the scoring pipeline's (the missed-run
        window is the cron's longest gap plus ``alertRunGraceMinutes``, rounded up to a window
        a log alert accepts: an hourly schedule with 30 minutes' grace watches 120 minutes, not
        90, which Azure refuses). A gap no log alert can look across (more than 2 days, e.g. a
        weekdays-only schedule) leaves that one rule off, with the reason in
        ``schedule_unwatched``: the schedule itself is fine."""
        schedule_cron, schedule_enabled = pipeline.schedule_cron, pipeline.schedule_enabled
        gap = longest_cron_gap_minutes(schedule_cron)
        window = gap + config.alert_run_grace_minutes
        allowed_window = log_alert_window(window)
        unwatched = None
        if schedule_enabled and allowed_window is None:
            unwatched = (
                f"scoring-run-missing is off: the schedule's longest gap ({gap} minutes, "
                f"scheduleCron {schedule_cron!r}) plus alertRunGraceMinutes "
                f"({config.alert_run_grace_minutes}) is {window} minutes, and a log alert looks "
                f"back at most {ALERT_WINDOW_MINUTES_MAX}"
            )
        return cls(
            emails=config.alert_emails,
            evaluation_minutes=config.alert_evaluation_minutes,
            missed_run_window_minutes=allowed_window or ALERT_WINDOW_MINUTES_MAX,
            watch_schedule=schedule_enabled and unwatched is None,
            schedule_unwatched=unwatched,
            run_summaries=pipeline.append_rows,
            failed_pairs_percent=config.alert_failed_pairs_percent,
            drifted_pairs_percent=config.alert_drifted_pairs_percent,
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
