"""Send sensor readings to Azure Event Hubs as JSON events, the way the devices would.

One event per reading::

    {"Device": "dev-001", "Sensor": "temperature", "Value": 21.5,
     "EventTime": "2024-05-01T12:00:00.000000Z"}

``EventTime`` is the reading's time as ISO-8601 UTC; the Stream Analytics query reads it with
``TIMESTAMP BY EventTime`` and reads ``Device``, ``Sensor`` and ``Value`` by those names.

Events are sent in batches (``create_batch`` / add until full / ``send_batch``), each batch
created with ``partition_key=Device``: all events of one device land in one partition, so
one device's readings stay in order. Authentication is Entra only
(``DefaultAzureCredential``): the namespace has local (key) auth disabled, and the sender
needs the role *Azure Event Hubs Data Sender* on the hub or namespace.

A malformed reading (no device or sensor, no valid time, a value that is not a finite
number) is skipped with a warning naming its row; every other reading is still sent.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import pandas as pd

from scoring.errors import RunFailed
from scoring.progress import progress_bar

log = logging.getLogger(__name__)

# Field names of one event (kept in step with the Stream Analytics query).
EVENT_FIELDS = ("Device", "Sensor", "Value", "EventTime")
_REQUIRED_COLUMNS = ("TS", "Device", "Sensor", "Value")


class EventHubSendError(RunFailed):
    """Sending to Event Hubs failed; the message names the hub and what was already sent."""


def send_readings(
    readings: pd.DataFrame,
    namespace: str,
    eventhub: str,
    *,
    producer: Any = None,
    batch_progress: bool = True,
) -> int:
    """Send ``readings`` (columns TS, Device, Sensor, Value; any case) to ``eventhub``.

    ``namespace`` is the fully qualified namespace (``<name>.servicebus.windows.net``).
    ``producer`` is an ``EventHubProducerClient``-like object (``create_batch``,
    ``send_batch``); when None one is created with ``DefaultAzureCredential`` and closed at
    the end. Returns the number of events sent.
    """
    frame = _normalised(readings)
    if producer is not None:
        return _send_all(frame, producer, f"{namespace}/{eventhub}", batch_progress)

    from azure.core.exceptions import ClientAuthenticationError
    from azure.eventhub import EventHubProducerClient
    from azure.eventhub.exceptions import EventHubError

    from components.providers.common import default_credential

    credential = default_credential()
    # Bounded: the client's defaults (3 retries backing off up to 120 s) kept an unknown host
    # busy for long, then ended in a 40-line traceback (azure-eventhub EventHubProducerClient
    # keywords retry_total, retry_backoff_factor, retry_backoff_max, socket_timeout).
    client = EventHubProducerClient(
        fully_qualified_namespace=namespace,
        eventhub_name=eventhub,
        credential=credential,
        retry_total=EVENTHUB_RETRIES,
        retry_backoff_factor=0.5,
        retry_backoff_max=4,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        with client:
            return _send_all(frame, client, f"{namespace}/{eventhub}", batch_progress)
    except (EventHubError, ClientAuthenticationError, OSError) as exc:
        raise EventHubSendError(
            f"cannot send to Event Hub {namespace}/{eventhub}: {_first_line(exc)} (check the "
            "namespace's host name, the network, and that the sender holds Azure Event Hubs "
            "Data Sender on the hub)"
        ) from None
    finally:
        credential.close()


#: retries of a failed Event Hubs operation, and seconds a socket may wait
EVENTHUB_RETRIES = 2
CONNECT_TIMEOUT_SECONDS = 5


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def reading_to_event(device: str, sensor: str, value: float, ts: pd.Timestamp) -> str:
    """The JSON body of one event (see the module docstring for the schema)."""
    return json.dumps(
        {"Device": device, "Sensor": sensor, "Value": value, "EventTime": _iso_utc(ts)},
        separators=(",", ":"),
    )


def _normalised(readings: pd.DataFrame) -> pd.DataFrame:
    """The four columns under their canonical names (input names matched case-insensitively)."""
    by_lower = {str(c).lower(): c for c in readings.columns}
    missing = [c for c in _REQUIRED_COLUMNS if c.lower() not in by_lower]
    if missing:
        raise ValueError(
            f"readings lack column(s) {', '.join(missing)} "
            f"(have: {', '.join(map(str, readings.columns)) or 'none'})"
        )
    return pd.DataFrame({c: readings[by_lower[c.lower()]] for c in _REQUIRED_COLUMNS})


def _events(frame: pd.DataFrame) -> tuple[int, Iterator[tuple[str, str]]]:
    """How many readings are valid, and (partition key, JSON body) for each of them, grouped
    by device and time-ordered within it. Malformed rows are logged (row label, reason)."""
    times = _as_utc_times(frame["TS"])
    values = pd.to_numeric(frame["Value"], errors="coerce")
    problems = _problems(frame, times, values)
    for row_label, problem in problems.dropna().items():
        log.warning("skipping reading at row %s: %s", row_label, problem)
    valid = frame.assign(_ts=times, _value=values)[problems.isna()]
    ordered = valid.sort_values(["Device", "_ts"], kind="stable")

    def bodies() -> Iterator[tuple[str, str]]:
        for device, sensor, value, ts in zip(
            ordered["Device"].astype(str),
            ordered["Sensor"].astype(str),
            ordered["_value"],
            ordered["_ts"],
            strict=True,
        ):
            yield device, reading_to_event(device, sensor, float(value), ts)

    return len(ordered), bodies()


def _problems(frame: pd.DataFrame, times: pd.Series, values: pd.Series) -> pd.Series:
    """Per row: why it cannot be sent, or NA when it is fine (the first problem found wins)."""
    problems = pd.Series(pd.NA, index=frame.index, dtype="object")
    checks = [
        (values.isna() | ~values.abs().lt(math.inf), "Value {!r} is not a finite number", "Value"),
        (times.isna(), "TS {!r} is not a valid time", "TS"),
    ]
    for column in ("Sensor", "Device"):
        empty = frame[column].isna() | frame[column].astype(str).str.strip().eq("")
        checks.append((empty, f"{column} is empty", column))
    for mask, template, column in checks:  # later checks overwrite earlier ones
        for label in mask[mask].index:
            problems[label] = template.format(frame.at[label, column])
    return problems


def _send_all(frame: pd.DataFrame, producer: Any, where: str, progress: bool) -> int:
    from azure.eventhub import EventData

    sent = 0
    batches = 0
    current_key: str | None = None
    batch = None
    total, events = _events(frame)
    bar = progress_bar(total=total, desc="sending events", unit="event") if progress else _NoBar()

    def flush() -> None:
        nonlocal sent, batches, batch
        if batch is not None and len(batch) > 0:
            try:
                producer.send_batch(batch)
            except Exception as exc:
                raise EventHubSendError(
                    f"sending a batch of {len(batch)} events (device {current_key}) to Event Hub "
                    f"{where} failed after {sent} events were sent: {exc} (the sender needs the "
                    "role Azure Event Hubs Data Sender on the hub)"
                ) from exc
            sent += len(batch)
            batches += 1
            bar.update(len(batch))
        batch = None

    try:
        for key, body in events:
            if key != current_key:
                flush()
                current_key = key
            if batch is None:
                batch = producer.create_batch(partition_key=key)
            try:
                batch.add(EventData(body))
            except ValueError:
                if len(batch) == 0:
                    raise EventHubSendError(
                        f"one event for device {key} ({len(body)} bytes) does not fit in an "
                        f"empty batch of Event Hub {where}"
                    ) from None
                flush()
                batch = producer.create_batch(partition_key=key)
                batch.add(EventData(body))
        flush()
    finally:
        bar.close()
    log.info("sent %d events in %d batches to Event Hub %s", sent, batches, where)
    return sent


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _as_utc_times(column: pd.Series) -> pd.Series:
    """Times as tz-aware UTC (naive taken as UTC); text parsed as ISO-8601, bad values NaT."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.to_datetime(column, utc=True)
    return pd.to_datetime(column, errors="coerce", utc=True, format="ISO8601")


def _iso_utc(ts: pd.Timestamp) -> str:
    """ISO-8601 with a ``Z`` suffix (naive times are taken as UTC, per the column contract)."""
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
