"""The reference decoder: the whole data contract applied to one Kafka record, in plain Python.

The contract written one rule after the other, from the contract's modules. The stream job's executors
decode every Kafka record with it (stream/decode.py, in one `mapInArrow` pass per partition), and
`sensorpipe doctor` uses it as it is. Until 2026-12-08 the job decoded with Spark Column expressions and
this was the oracle they were tested against; the edge cases of those expressions (Java's regex white
space, Spark's base64, its JSON rendering) are kept, so a record is judged as it always was.

Per record: unwrap the value (contract/encodings.py: a record-level reject ends it there); a JSON object is
one reading, a JSON array a gateway's batch whose elements are checked each on its own (one bad element
does not reject its neighbours). Per reading, the first that applies: not an object; a `\\u0000` jsonb
cannot store; an id field of the wrong type; none of the measurements; a measurement that is not a number,
not finite or out of its range; a bad timestamp. A valid reading gets its sensor id (contract/identity.py),
its time (contract/timestamps.py) and its JSON as `raw_data`.

`raw_data` is the reading's JSON: for a single reading the payload's own text (without the white space
around it); for a batch element, or an envelope's object, the value rendered again (json_text.render, as
Spark's JSON writer did). A reject's `payload` is the record's value, or for an element of a batch that element's JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sensorpipe.config import Settings
from sensorpipe.contract.encodings import Unwrapped, unwrap
from sensorpipe.contract.headers import HEADER_RECEIVED_AT, HEADER_TOPIC
from sensorpipe.contract.identity import ID_FIELDS, TopicIds, id_subscriptions, is_id_type, payload_sensor_id, sensor_id
from sensorpipe.contract.json_text import Number, has_nul, json_type, render
from sensorpipe.contract.measurements import MEASUREMENTS, Measurement
from sensorpipe.contract.reasons import Reason
from sensorpipe.contract.timestamps import iso_micros, number_micros, received_micros

__all__ = ["Decoded", "Reading", "Record", "Reject", "Rules", "decode"]

_JSON_SPACE = " \t\n\r"


@dataclass(frozen=True)
class Record:
    """One Kafka record, as the stream job reads it (the key is not read)."""

    value: bytes | None
    timestamp: datetime
    """The record's Kafka timestamp (timezone-aware)."""
    headers: Sequence[tuple[str, bytes | None]] = ()
    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass(frozen=True)
class Rules:
    """What of the settings the contract depends on."""

    max_payload_bytes: int
    default_sensor_id: str
    topic_ids: TopicIds
    measurements: tuple[Measurement, ...] = MEASUREMENTS

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            max_payload_bytes=settings.stream.max_payload_bytes,
            default_sensor_id=settings.readings.default_sensor_id,
            topic_ids=TopicIds(id_subscriptions(settings.mqtt)),
        )


@dataclass(frozen=True)
class Reading:
    """A valid reading: a row of `sensor_data`."""

    element: int
    """Its index in a batch (0 for a single reading)."""
    sensor_id: str
    time_us: int
    """When it was taken: microseconds since the epoch (UTC)."""
    time_source: str
    """`payload`, or `received` when the payload has no timestamp."""
    values: dict[str, float | None]
    """Each declared measurement's value, None when the reading has none."""
    raw_data: str


@dataclass(frozen=True)
class Reject:
    """A row of `sensor_rejects`."""

    element: int
    reason: Reason
    detail: str
    payload: bytes


@dataclass(frozen=True)
class Decoded:
    """What one record holds: at least one reading or reject."""

    encoding: str
    unwrapped: bool
    """The value unwrapped to one JSON object or array (a reading or a batch, valid or not)."""
    readings: tuple[Reading, ...] = ()
    rejects: tuple[Reject, ...] = ()


def _header(headers: Sequence[tuple[str, bytes | None]], name: str) -> bytes | None:
    """The first header called `name`."""
    return next((value for key, value in headers if key == name), None)


def _text(data: bytes | None) -> str | None:
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class _Context:
    rules: Rules
    unwrapped: Unwrapped
    topic_id: str | None
    received_us: int
    record_value: bytes
    batch: bool
    nul_possible: bool
    """The JSON text holds a `\\u0000` escape: the only way a parsed value can hold a NUL."""


def _measurement_reject(measurement: Measurement, value: Any) -> tuple[Reason, str] | None:
    if value is None:
        return None
    name = measurement.name
    if not isinstance(value, Number):
        return Reason.WRONG_TYPE, f"{name} is {json_type(value)}, not a number"
    number = value.value
    if abs(number) == float("inf"):
        return Reason.NOT_FINITE, f"{name} is not a finite number"
    if not measurement.within(number):
        return Reason.OUT_OF_RANGE, f"{name} {value.text} outside {measurement.range_text}"
    return None


def _payload_time(stamp: Any) -> int | None:
    if isinstance(stamp, Number):
        return number_micros(stamp.value)
    if isinstance(stamp, str):
        return iso_micros(stamp)
    return None


def _type_reject(element: dict[str, Any], measurements: tuple[Measurement, ...]) -> tuple[Reason, str] | None:
    """An id of the wrong type, no measurement, or a measurement that breaks its rule."""
    for name in ID_FIELDS:
        if not is_id_type(element.get(name)):
            return Reason.WRONG_TYPE, f"{name} is {json_type(element[name])}, not a string or a 64-bit integer"
    if all(element.get(m.name) is None for m in measurements):
        return Reason.MISSING_VALUES, f"none of {', '.join(m.name for m in measurements)}"
    for measurement in measurements:
        found = _measurement_reject(measurement, element.get(measurement.name))
        if found is not None:
            return found
    return None


def _check(element: Any, context: _Context) -> tuple[Reason, str] | None:
    """Why a reading candidate is invalid (reason, detail), None when it is valid."""
    if not isinstance(element, dict):
        return Reason.NOT_AN_OBJECT, f"the element is {json_type(element)}"
    if context.nul_possible and has_nul(element):
        return Reason.NOT_JSON, "\\u0000 cannot be stored in jsonb"
    found = _type_reject(element, context.rules.measurements)
    stamp = element.get("timestamp")
    if found is None and stamp is not None and _payload_time(stamp) is None:
        found = (
            Reason.BAD_TIMESTAMP,
            "timestamp is not epoch seconds, epoch ms or ISO-8601 with an offset in 1970..9999",
        )
    return found


def _candidate(pos: int, element: Any, context: _Context) -> Reading | Reject:
    unwrapped = context.unwrapped
    if context.batch:
        # Spark's JSON reader copies an object element (integers as written); anything else is rendered.
        verbatim = isinstance(element, dict) and not unwrapped.rendered
        text = render(element, integers_verbatim=verbatim)
    else:
        assert unwrapped.text is not None
        text = unwrapped.text.strip(_JSON_SPACE)
    verdict = _check(element, context)
    if verdict is not None:
        reason, detail = verdict
        payload = text.encode() if context.batch else context.record_value
        return Reject(pos, reason, f"element {pos}: {detail}" if context.batch else detail, payload)
    stamp = element.get("timestamp")
    payload_us = None if stamp is None else _payload_time(stamp)
    rules = context.rules
    return Reading(
        element=pos,
        sensor_id=sensor_id(payload_sensor_id(element), context.topic_id, rules.default_sensor_id),
        time_us=context.received_us if payload_us is None else payload_us,
        time_source="received" if payload_us is None else "payload",
        values={
            m.name: value.value if isinstance(value := element.get(m.name), Number) else None
            for m in rules.measurements
        },
        raw_data=text,
    )


def decode(record: Record, rules: Rules) -> Decoded:
    """The readings and rejects of one Kafka record, as the stream job must store them."""
    unwrapped = unwrap(record.value, rules.max_payload_bytes)
    value = record.value or b""
    if unwrapped.reject is not None:
        reason, detail = unwrapped.reject
        return Decoded(unwrapped.encoding, unwrapped.unwrapped, rejects=(Reject(0, reason, detail, value),))
    elements = unwrapped.value if isinstance(unwrapped.value, list) else [unwrapped.value]
    if not elements:
        return Decoded(unwrapped.encoding, True, rejects=(Reject(0, Reason.EMPTY, "a batch without readings", value),))
    context = _Context(
        rules=rules,
        unwrapped=unwrapped,
        topic_id=rules.topic_ids.of(_text(_header(record.headers, HEADER_TOPIC))),
        received_us=received_micros(_header(record.headers, HEADER_RECEIVED_AT), record.timestamp),
        record_value=value,
        batch=isinstance(unwrapped.value, list),
        nul_possible=unwrapped.text is None or "\\u0000" in unwrapped.text,
    )
    candidates = [_candidate(pos, element, context) for pos, element in enumerate(elements)]
    return Decoded(
        unwrapped.encoding,
        True,
        readings=tuple(c for c in candidates if isinstance(c, Reading)),
        rejects=tuple(c for c in candidates if isinstance(c, Reject)),
    )
