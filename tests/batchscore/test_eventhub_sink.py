"""Event Hubs sending against a recording fake producer that hands out real (small) batches."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from azure.eventhub import EventDataBatch

from batchscore.cloud.eventhub import EVENT_FIELDS, EventHubSendError, send_readings


class RecordingProducer:
    """Looks like EventHubProducerClient: real EventDataBatch objects, capped at a small size."""

    def __init__(self, max_batch_bytes: int = 600, fail_on_send: int | None = None):
        self.max_batch_bytes = max_batch_bytes
        self.fail_on_send = fail_on_send
        self.created: list[str | None] = []
        self.sent: list[tuple[str | None, list[dict]]] = []

    def create_batch(self, *, partition_key=None, partition_id=None, max_size_in_bytes=None):
        self.created.append(partition_key)
        return EventDataBatch(max_size_in_bytes=self.max_batch_bytes, partition_key=partition_key)

    def send_batch(self, batch, **kwargs):
        if self.fail_on_send is not None and len(self.sent) == self.fail_on_send:
            raise ConnectionError("link detached")
        bodies = [json.loads(e.body_as_str()) for e in batch._internal_events]
        keys = {e.partition_key for e in batch._internal_events}
        assert keys == {batch._partition_key}, f"events carry keys {keys}"
        self.sent.append((batch._partition_key, bodies))


def _readings(devices: int = 3, sensors: int = 2, steps: int = 5) -> pd.DataFrame:
    rows = []
    for step in range(steps):
        for d in range(devices):
            for s in range(sensors):
                rows.append(
                    {
                        "ts": pd.Timestamp("2024-05-01 12:00") + pd.Timedelta(minutes=step),
                        "DEVICE": f"dev-{d:03d}",
                        "sensor": f"s{s}",
                        "value": d * 10 + s + step / 10,
                        "Extra": "kept and ignored",
                    }
                )
    return pd.DataFrame(rows)


def test_sends_every_reading_in_several_batches_partitioned_by_device():
    producer = RecordingProducer(max_batch_bytes=600)
    readings = _readings()

    sent = send_readings(readings, "ns.servicebus.windows.net", "hub", producer=producer)

    assert sent == len(readings) == 30
    assert sum(len(b) for _, b in producer.sent) == 30
    # 10 events per device do not fit in one 600-byte batch: more batches than devices.
    assert len(producer.sent) > 3, f"only {len(producer.sent)} batches sent"
    for key, bodies in producer.sent:
        assert {b["Device"] for b in bodies} == {key}, f"batch for {key} mixes devices"


def test_event_schema_matches_the_stream_analytics_query():
    producer = RecordingProducer(max_batch_bytes=10_000)
    readings = _readings(devices=1, sensors=1, steps=1)

    send_readings(readings, "ns", "hub", producer=producer, batch_progress=False)

    [(_, [event])] = producer.sent
    assert tuple(event) == EVENT_FIELDS
    assert event == {
        "Device": "dev-000",
        "Sensor": "s0",
        "Value": 0.0,
        "EventTime": "2024-05-01T12:00:00.000000Z",
    }


def test_one_devices_events_stay_in_time_order():
    producer = RecordingProducer(max_batch_bytes=400)
    readings = _readings(devices=2, sensors=1, steps=6).sample(frac=1.0, random_state=7)

    send_readings(readings, "ns", "hub", producer=producer, batch_progress=False)

    per_device: dict[str, list[str]] = {}
    for key, bodies in producer.sent:
        per_device.setdefault(key, []).extend(b["EventTime"] for b in bodies)
    assert set(per_device) == {"dev-000", "dev-001"}
    for device, times in per_device.items():
        assert times == sorted(times), f"{device} events out of order: {times}"


def test_aware_timestamps_are_converted_to_utc():
    producer = RecordingProducer(max_batch_bytes=10_000)
    readings = pd.DataFrame(
        {
            "TS": [pd.Timestamp("2024-05-01 14:00", tz="Europe/Berlin")],
            "Device": ["d"],
            "Sensor": ["s"],
            "Value": [1.5],
        }
    )
    send_readings(readings, "ns", "hub", producer=producer, batch_progress=False)
    assert producer.sent[0][1][0]["EventTime"] == "2024-05-01T12:00:00.000000Z"


def test_malformed_rows_are_skipped_with_a_warning_and_the_rest_sent(caplog):
    producer = RecordingProducer(max_batch_bytes=10_000)
    readings = pd.DataFrame(
        {
            "TS": ["2024-05-01T12:00:00", "not a time", "2024-05-01T12:01:00", "2024-05-01T12:02"],
            "Device": ["d1", "d1", None, "d1"],
            "Sensor": ["s", "s", "s", "s"],
            "Value": [1.0, 2.0, 3.0, "abc"],
        }
    )
    with caplog.at_level(logging.WARNING, logger="batchscore.cloud.eventhub"):
        sent = send_readings(readings, "ns", "hub", producer=producer, batch_progress=False)

    assert sent == 1
    text = caplog.text
    assert "row 1: TS 'not a time' is not a valid time" in text
    assert "row 2: Device is empty" in text
    assert "row 3: Value 'abc' is not a finite number" in text


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="lack column.*Value"):
        send_readings(
            pd.DataFrame({"TS": [], "Device": [], "Sensor": []}),
            "ns",
            "hub",
            producer=RecordingProducer(),
        )


def test_send_failure_names_the_hub_and_what_was_sent():
    producer = RecordingProducer(max_batch_bytes=400, fail_on_send=1)
    with pytest.raises(EventHubSendError) as info:
        send_readings(_readings(), "ns.example", "hub", producer=producer, batch_progress=False)
    message = str(info.value)
    assert "ns.example/hub" in message
    assert f"after {len(producer.sent[0][1])} events were sent" in message
    assert "Azure Event Hubs Data Sender" in message


def test_event_too_large_for_an_empty_batch_is_reported():
    producer = RecordingProducer(max_batch_bytes=50)
    with pytest.raises(EventHubSendError, match="does not fit in an empty batch"):
        send_readings(_readings(1, 1, 1), "ns", "hub", producer=producer, batch_progress=False)


def test_without_a_producer_it_connects_with_entra_and_closes(monkeypatch):
    import azure.eventhub
    import azure.identity

    made: dict = {}

    class FakeCredential:
        def __init__(self, **kwargs):
            made["credential_kwargs"] = kwargs
            self.closed = False

        def close(self):
            made["credential_closed"] = True

    class FakeClient(RecordingProducer):
        def __init__(self, *, fully_qualified_namespace, eventhub_name, credential, **bounds):
            super().__init__(max_batch_bytes=10_000)
            made.update(ns=fully_qualified_namespace, hub=eventhub_name, credential=credential)
            made["bounds"] = bounds

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            made["client_closed"] = True

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeCredential)
    monkeypatch.setattr(azure.eventhub, "EventHubProducerClient", FakeClient)

    sent = send_readings(_readings(1, 1, 2), "ns.servicebus.windows.net", "sensor-readings")

    assert sent == 2
    # bounded retries and socket waits: an unknown host answers in seconds, not minutes
    assert made["bounds"]["retry_total"] == 2 and made["bounds"]["retry_backoff_max"] <= 4
    assert made["bounds"]["socket_timeout"] == 5
    assert (made["ns"], made["hub"]) == ("ns.servicebus.windows.net", "sensor-readings")
    assert isinstance(made["credential"], FakeCredential)
    assert made["client_closed"] and made["credential_closed"]
