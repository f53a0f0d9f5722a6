"""The JobSchedule that runs the scoring pipeline on the configured cron."""

from __future__ import annotations

from azure.ai.ml.entities import CronTrigger, JobSchedule, PipelineJob

from components.config.pipeline import PipelineSettings


def scoring_schedule(name: str, settings: PipelineSettings, job: PipelineJob) -> JobSchedule:
    """A cron schedule of ``job``; ``job.inputs.trigger_time`` must carry the trigger macro.

    ``is_enabled`` is sent explicitly so an upsert also restores a schedule that someone
    disabled outside the deployment (or disables it when ``scheduleEnabled`` is false).
    """
    return JobSchedule(
        name=name,
        display_name="Hourly scoring of sensor readings"
        if settings.schedule_cron == "0 * * * *"
        else "Scheduled scoring of sensor readings",
        description=f"Runs the scoring pipeline at '{settings.schedule_cron}' "
        f"({settings.schedule_time_zone}); managed by Pulumi (project batchscore).",
        trigger=CronTrigger(
            expression=settings.schedule_cron, time_zone=settings.schedule_time_zone
        ),
        create_job=job,
        tags={"managed-by": "pulumi", "project": "batchscore"},
        is_enabled=settings.schedule_enabled,
    )
