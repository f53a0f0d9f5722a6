"""A run's summary as one Application Insights custom event, checked offline: the record the
OpenTelemetry SDK hands its exporter (an in-memory exporter) and the envelope the pinned Azure
Monitor exporter makes of it (its own conversion, no network)."""

from __future__ import annotations

import json
import logging

import pytest
from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from scoring import telemetry

SUMMARY = {
    "window": "window=20240101T010000Z",
    "window_start": "2024-01-01T00:00:00",
    "window_end": "2024-01-01T01:00:00",
    "status": "succeeded",
    "failure": None,
    "rows_extracted": 36,
    "rows_published": 24,
    "rows_missing": 12,
    "anomalies": 3,
    "pairs": 3,
    "pairs_scored": 2,
    "pairs_failed": 1,
    "failed_pairs": [{"device": "dev-3", "sensor": "hum", "reason": "mini-batch failed: x"}],
    "failed_mini_batches": [{"keys": {"Device": "dev-3", "Sensor": "hum"}, "reason": "x"}],
    "model_version": "20240101T000000Z-abc",
    "model_versions": 2,
    "run_id": None,
    "timings": {"publish_seconds": 0.5, "scoring_seconds": None, "latency_seconds": 90.0},
    "rows_by_status": {"ok": 23, "invalid_value": 1},
}


def emitted(summary: dict) -> tuple[bool, list]:
    exporter = InMemoryLogRecordExporter()
    sent = telemetry.emit_run_summary(summary, exporter=exporter)
    return sent, exporter.get_finished_logs()


def test_the_summary_is_one_custom_event_with_properties_and_measurements():
    sent, (record,) = emitted(SUMMARY)
    assert sent is True
    attributes = dict(record.log_record.attributes)
    assert attributes["microsoft.custom_event.name"] == "ScoringRunSummary"
    assert record.resource.attributes["service.name"] == "batchscore-publish"
    envelope = _convert_log_to_envelope(record)  # what Application Insights receives
    assert envelope.data.base_type == "EventData"
    event = envelope.data.base_data
    assert event.name == "ScoringRunSummary"
    assert event.properties["window"] == "window=20240101T010000Z"
    assert event.properties["status"] == "succeeded"
    assert json.loads(event.properties["failed_pairs_sample"])[0]["sensor"] == "hum"
    assert "failure" not in event.properties and "run_id" not in event.properties
    assert event.measurements == {
        "rows_extracted": 36.0, "rows_published": 24.0, "rows_missing": 12.0,
        "anomalies": 3.0, "pairs": 3.0, "pairs_scored": 2.0, "pairs_failed": 1.0,
        "failed_mini_batches": 1.0, "model_versions": 2.0, "publish_seconds": 0.5,
        "latency_seconds": 90.0,
    }  # fmt: skip


def test_every_contract_field_is_a_summary_field():
    from dataclasses import fields

    from scoring.steps.publish import PublishSummary

    summary_fields = {f.name for f in fields(PublishSummary)}
    timings = {"publish_seconds", "scoring_seconds", "latency_seconds"}
    derived = {"failed_pairs_sample", "drift_worst_sample"}
    contract = set(telemetry.PROPERTIES) | set(telemetry.MEASUREMENTS)
    assert contract - summary_fields - timings - derived == set()
    assert not set(telemetry.PROPERTIES) & set(telemetry.MEASUREMENTS)


class Refusing:
    """An exporter whose backend refuses everything, loudly."""

    def export(self, batch):
        raise ConnectionError("ingestion refused the token")

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def test_an_exporter_that_raises_does_not_raise_here():
    assert telemetry.emit_run_summary(SUMMARY, exporter=Refusing()) is True  # handed over


def test_a_failure_before_the_export_is_logged_and_returns_false(monkeypatch, caplog):
    def broken(environ=None):
        raise ValueError("InstrumentationKey missing")

    monkeypatch.setattr(telemetry, "exporter_from_environment", broken)
    with caplog.at_level(logging.WARNING, logger="scoring.telemetry"):
        assert telemetry.emit_run_summary(SUMMARY) is False
    assert "ValueError: InstrumentationKey missing" in caplog.text


def test_without_a_connection_string_nothing_is_sent(monkeypatch):
    monkeypatch.delenv(telemetry.CONNECTION_STRING_ENV, raising=False)
    assert telemetry.exporter_from_environment() is None
    assert telemetry.emit_run_summary(SUMMARY) is False


def test_the_exporter_signs_in_as_the_cluster_identity_with_no_key():
    environ = {
        telemetry.CONNECTION_STRING_ENV: "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=http://127.0.0.1:9/",
        "DEFAULT_IDENTITY_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    }
    exporter = telemetry.exporter_from_environment(environ)  # builds without the network
    assert type(exporter).__name__ == "AzureMonitorLogExporter"
    credential = exporter._credential  # private: pinned exporter 1.0.0b57
    assert type(credential).__name__ == "ManagedIdentityCredential"
    assert exporter._disable_offline_storage is True
    assert environ[telemetry.STATSBEAT_DISABLED_ENV] == "true"


@pytest.mark.parametrize("bad", [None, "12", True])
def test_only_numbers_become_measurements(bad):
    properties, measurements = telemetry.event_fields({**SUMMARY, "anomalies": bad})
    assert "anomalies" not in measurements
    assert properties["status"] == "succeeded"
