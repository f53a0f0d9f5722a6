"""A run's summary to Application Insights as one custom event, with OpenTelemetry.

The publish step calls :func:`emit_run_summary` once per run. The event is what the alert
rules and the workbook read (``components/shared/monitoring_queries.py``), in the
``AppEvents`` table of the stack's Log Analytics workspace (Application Insights is
workspace-based there):

* ``Name`` is :data:`EVENT_NAME`;
* ``Properties`` (strings) hold :data:`PROPERTIES`, ``Measurements`` (numbers) hold
  :data:`MEASUREMENTS`: the contract the queries name, kept in this one place.

How the record becomes an event: the Azure Monitor exporter turns a log record carrying the
attribute ``microsoft.custom_event.name`` into a custom event (``EventData``) instead of a
trace; every other attribute goes to ``Properties`` as a string, and the attribute
``microsoft.custom_measurements`` (JSON of name -> number) to ``Measurements``
(azure-monitor-opentelemetry-exporter 1.0.0b57, ``export/logs/_exporter.py`` and
``_utils._filter_custom_measurements``; constants in ``_constants.py``).

Authentication: Microsoft Entra only. The component has local auth off, so ingestion
without a token is refused; the exporter gets a token as the cluster's user-assigned identity
(``ManagedIdentityCredential`` with the client id the deployment sets), which holds
*Monitoring Metrics Publisher* on the component ("Although the Monitoring Metrics Publisher
role says 'metrics,' it publishes all telemetry": learn.microsoft.com/azure/azure-monitor/app/
azure-ad-authentication). The connection string comes from the environment
(:data:`CONNECTION_STRING_ENV`, set on the publish step by the deployment) and is not a
secret: "Ikey unique identifiers aren't security tokens or security keys"
(learn.microsoft.com/azure/azure-monitor/app/connection-strings). Without it (a laptop) no
event is sent.

Nothing here may fail a run: every error is logged as a warning and :func:`emit_run_summary`
returns False.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

EVENT_NAME = "ScoringRunSummary"
#: the OpenTelemetry service name: ``AppRoleName`` of the event
SERVICE_NAME = "batchscore-publish"
CONNECTION_STRING_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
#: the cluster identity's client id, as the pipeline steps are given it
IDENTITY_ENVS = ("DEFAULT_IDENTITY_CLIENT_ID", "AZURE_CLIENT_ID")
#: Microsoft's SDK-usage telemetry: its periodic export only delays a one-shot step's exit
STATSBEAT_DISABLED_ENV = "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"
CUSTOM_EVENT_ATTRIBUTE = "microsoft.custom_event.name"
CUSTOM_MEASUREMENTS_ATTRIBUTE = "microsoft.custom_measurements"

#: summary fields sent as ``Properties`` (strings)
PROPERTIES = (
    "window",
    "window_start",
    "window_end",
    "status",
    "failure",
    "run_id",
    "model_version",
    "failed_pairs_sample",
    "drift_statistic",
    "drift_worst_sample",
)
#: summary fields sent as ``Measurements`` (numbers)
MEASUREMENTS = (
    "rows_extracted",
    "rows_published",
    "rows_missing",
    "anomalies",
    "pairs",
    "pairs_scored",
    "pairs_failed",
    "failed_mini_batches",
    "model_versions",
    "drift_pairs",
    "drifted_pairs",
    "publish_seconds",
    "scoring_seconds",
    "latency_seconds",
)
#: failed pairs named in the event (the summary file lists more; the count is exact)
SAMPLE_PAIRS = 10


def event_fields(summary: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, float]]:
    """The event's ``Properties`` and ``Measurements`` from a run summary (``summary.json``)."""
    flat = {**summary, **(summary.get("timings") or {})}
    failed = flat.get("failed_mini_batches")
    if isinstance(failed, list):
        flat["failed_mini_batches"] = len(failed)
    sample = list(flat.get("failed_pairs") or [])[:SAMPLE_PAIRS]
    flat["failed_pairs_sample"] = json.dumps(sample) if sample else None
    worst = list(flat.get("drift_worst") or [])
    flat["drift_worst_sample"] = json.dumps(worst) if worst else None
    properties = {key: str(flat[key]) for key in PROPERTIES if flat.get(key) is not None}
    measurements = {
        key: float(flat[key])
        for key in MEASUREMENTS
        if isinstance(flat.get(key), int | float) and not isinstance(flat.get(key), bool)
    }
    return properties, measurements


def exporter_from_environment(environ: MutableMapping[str, str] | None = None) -> Any | None:
    """The Azure Monitor log exporter for this step, or None without a connection string."""
    environ = os.environ if environ is None else environ
    connection_string = (environ.get(CONNECTION_STRING_ENV) or "").strip()
    if not connection_string:
        return None
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry.exporter import AzureMonitorLogExporter

    environ.setdefault(STATSBEAT_DISABLED_ENV, "true")
    client_id = next((environ[key] for key in IDENTITY_ENVS if environ.get(key)), None)
    return AzureMonitorLogExporter(
        connection_string=connection_string,
        credential=ManagedIdentityCredential(client_id=client_id),
        # The step ends after publishing: nothing would come back to retry from disk.
        disable_offline_storage=True,
    )


#: the training pipeline's event (:mod:`scoring.steps.promote`), read by the training alert
TRAINING_EVENT_NAME = "TrainingRunSummary"
TRAINING_PROPERTIES = ("status", "failure", "generation", "run_id", "training_window_end")
TRAINING_MEASUREMENTS = (
    "pairs_trained",
    "promoted",
    "added",
    "rejected",
    "failed",
    "kept",
    "rejected_percent",
)


def training_event_fields(summary: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, float]]:
    """The training event's ``Properties`` and ``Measurements`` from a training summary."""
    properties = {k: str(summary[k]) for k in TRAINING_PROPERTIES if summary.get(k) is not None}
    measurements = {
        k: float(summary[k])
        for k in TRAINING_MEASUREMENTS
        if isinstance(summary.get(k), int | float) and not isinstance(summary.get(k), bool)
    }
    return properties, measurements


def emit_training_summary(summary: Mapping[str, Any], exporter: Any | None = None) -> bool:
    """Send a training run's summary as one :data:`TRAINING_EVENT_NAME` event (as
    :func:`emit_run_summary` does for a scoring run)."""
    return _emit(TRAINING_EVENT_NAME, training_event_fields, summary, exporter)


def emit_run_summary(summary: Mapping[str, Any], exporter: Any | None = None) -> bool:
    """Send the run's summary as one :data:`EVENT_NAME` event through ``exporter`` (default:
    :func:`exporter_from_environment`). True when the record was handed to the exporter;
    False (and a log line) when there is nowhere to send it or anything failed."""
    return _emit(EVENT_NAME, event_fields, summary, exporter)


def _emit(name: str, fields_of, summary: Mapping[str, Any], exporter: Any | None) -> bool:
    try:
        exporter = exporter if exporter is not None else exporter_from_environment()
        if exporter is None:
            log.info("no %s: the run summary is not sent to Application Insights",
                     CONNECTION_STRING_ENV)  # fmt: skip
            return False
        # The Logs SDK lives under `_logs` in opentelemetry-sdk 1.44 (its only module path).
        from opentelemetry._logs import SeverityNumber
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        provider = LoggerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        # One record, exported synchronously: the step must not exit before it is sent.
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        properties, measurements = fields_of(summary)
        provider.get_logger(__name__).emit(
            body=name,
            severity_number=SeverityNumber.INFO,
            attributes={
                **properties,
                CUSTOM_EVENT_ATTRIBUTE: name,
                CUSTOM_MEASUREMENTS_ATTRIBUTE: json.dumps(measurements),
            },
        )
        provider.shutdown()
    except Exception as exc:  # noqa: BLE001 - telemetry must never fail a run
        log.warning("run summary not sent to Application Insights: %s: %s",
                    type(exc).__name__, exc)  # fmt: skip
        return False
    # The exporter logs its own failures (e.g. a refused token): the SDK keeps them from us.
    log.info("run summary handed to the Application Insights exporter as %s", name)
    return True
