"""Kafka records for every rule of the data contract, with what each must become.

tests/unit/contract/test_reference.py checks the reference decoder against the expectations;
tests/unit/stream/test_decode.py runs the same records through the stream job's Arrow decode and checks
that it gives every one of them the reference decoder's outcome (tests/decode_support.py compares).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sensorpipe.contract.headers import HEADER_RECEIVED_AT, HEADER_TOPIC
from sensorpipe.contract.identity import TopicIds
from sensorpipe.contract.reference import Record, Rules

MAX_BYTES = 16_384
KAFKA_TS = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KAFKA_US = 1_767_323_045_000_000
RECEIVED_MS = 1_712_921_700_000
READING = {"sensor_id": "s-1", "timestamp": 1712921712.123, "temperature": 21.5, "humidity": 40.25}
READING_US = 1_712_921_712_123_000
SUBSCRIPTIONS = ("sensors/+/data", "sensors/data")
RULES = Rules(max_payload_bytes=MAX_BYTES, default_sensor_id="default", topic_ids=TopicIds(SUBSCRIPTIONS))
SETTINGS: dict[str, dict[str, Any]] = {
    "mqtt": {"topic": SUBSCRIPTIONS[0], "legacy_topic": SUBSCRIPTIONS[1]},
    "readings": {"default_sensor_id": "default"},
    "stream": {"max_payload_bytes": MAX_BYTES},
}
"""The settings behind RULES, for `load_settings`."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def envelope(payload: Any, schema: Any = None) -> bytes:
    return json.dumps({"schema": schema or {"type": "bytes", "optional": False}, "payload": payload}).encode()


def reading(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def with_padding_two() -> str:
    """Base64 of the reading that ends in `==`, so dropping one `=` makes the padding wrong."""
    text = json.dumps(READING)
    while len(text.encode()) % 3 != 1:
        text += " "
    encoded = b64(text.encode())
    assert encoded.endswith("==")
    return encoded[:-1]


class Case(NamedTuple):
    value: bytes | None
    topic: str | bytes | None = None
    """The bridge's topic header (bytes: as they are, maybe not UTF-8)."""
    received: str | None = None
    """The bridge's receive-time header."""


RAW = json.dumps(READING).encode()
NO_TS = {"temperature": 20.0, "humidity": 50.0}
RECEIVED = str(RECEIVED_MS)
HUGE = b"1" + b"0" * 400  # an integer beyond double range

CASES: dict[str, Case] = {
    # the same reading in every encoding
    "raw_json": Case(RAW, "sensors/s-1/data", RECEIVED),
    "base64_json": Case(b64(RAW).encode()),
    "quoted_base64": Case(json.dumps(b64(RAW)).encode()),
    "envelope_raw_json": Case(envelope(READING, {"type": "struct", "fields": []})),
    "envelope_base64_json": Case(envelope(b64(RAW))),
    "envelope_quoted_base64": Case(envelope(json.dumps(b64(RAW)))),
    "spaces": Case(b"  \n" + RAW + b"\n "),
    # gateway batch: element 1 is bad
    "batch": Case(
        json.dumps([READING, {"sensor_id": "s-2", "temperature": "hot"}, {**READING, "sensor_id": "s-3"}]).encode(),
        "sensors/gw-01/data",
        RECEIVED,
    ),
    "batch_of_numbers": Case(b"[1, 2]"),
    "batch_of_odd_elements": Case(b'[null, "{\\"temperature\\": 1}", [{"temperature": 1}], {"temperature": 2}]'),
    # raw_data keeps the payload's numbers where it is the payload's text, Spark's rendering elsewhere
    "spaced_numbers": Case(b' {"temperature": 21.50, "x": 1e400, "y": ' + HUGE + b"}\t"),
    "batch_numbers": Case(b'[{"temperature": 21.50, "x": 1e400, "y": ' + HUGE + b"}]"),
    "envelope_numbers": Case(b'{"schema": {}, "payload": {"temperature": 21.50, "x": 1e400, "y": ' + HUGE + b"}}"),
    "envelope_batch_numbers": Case(b'{"schema": {}, "payload": [{"temperature": 1, "y": ' + HUGE + b"}]}"),
    # sensor id and time
    "legacy": Case(reading(temperature=25.3, humidity=65.4, timestamp=1712921712.123), "sensors/data", RECEIVED),
    "topic_id": Case(reading(temperature=25.3, timestamp=1712921712.123), "sensors/s-17/data", RECEIVED),
    "device_id": Case(reading(device_id=42, humidity=10, timestamp=1712921712.123), "sensors/s-17/data"),
    "payload_id_first": Case(reading(sensor_id="s-9", humidity=10), "sensors/s-17/data"),
    "empty_id": Case(reading(sensor_id="", humidity=10, timestamp=1712921712.123), "sensors/s-17/data"),
    "null_id": Case(reading(sensor_id=None, device_id="d-1", humidity=10), "sensors/s-17/data"),
    "topic_line_break": Case(reading(humidity=10), "sensors/s-17/data\n"),
    "topic_not_utf8": Case(reading(humidity=10), b"sensors/\xff/data"),
    "topic_nul": Case(reading(humidity=10), "sensors/a\x00b/data"),
    "topic_other": Case(reading(humidity=10), "elsewhere/s-17/data"),
    "ms": Case(reading(sensor_id="a", temperature=1, timestamp=1712921712123)),
    "iso": Case(reading(sensor_id="a", temperature=1, timestamp="2024-04-12T13:35:12.123+02:00")),
    "iso_z": Case(reading(sensor_id="a", temperature=1, timestamp="2024-04-12T11:35:12.123Z")),
    "iso_lower_case": Case(reading(sensor_id="a", temperature=1, timestamp="2024-04-12t11:35:12.123z")),
    "iso_minutes": Case(reading(sensor_id="a", temperature=1, timestamp="2024-04-12T11:35Z")),
    "iso_nanos": Case(reading(sensor_id="a", temperature=1, timestamp="2024-04-12T11:35:12.123456789Z")),
    "received": Case(reading(sensor_id="a", **NO_TS), "sensors/a/data", RECEIVED),
    "kafka_time": Case(reading(sensor_id="a", **NO_TS, timestamp=None)),
    "received_not_digits": Case(reading(sensor_id="a", **NO_TS), None, f" {RECEIVED}"),
    "received_negative": Case(reading(sensor_id="a", **NO_TS), None, "-5"),
    "received_beyond_9999": Case(reading(sensor_id="a", **NO_TS), None, "253402300800000"),
    "nul_escaped_backslash": Case(b'{"temperature": 1, "note": "a\\\\u0000b"}'),
    # rejects
    "empty": Case(b""),
    "null_value": Case(None),
    "blank": Case(b"  \n"),
    "too_large": Case(json.dumps({**READING, "pad": "x" * MAX_BYTES}).encode()),
    "not_utf8": Case(b'\xff\xfe{"temperature": 1}'),
    "base64_not_utf8": Case(b64(b"\xff\xfe\xfd").encode()),
    "bad_padding": Case(with_padding_two().encode()),
    "not_base64": Case(b"hello!"),
    "base64_not_json": Case(b64(b"temperature=21").encode()),
    "truncated": Case(RAW[: len(RAW) // 2]),
    "trailing": Case(RAW + b"}"),
    "two_values": Case(RAW + b" " + RAW),
    "forged_end": Case(b'{"temperature": 20}, 0] x'),
    "nan": Case(b'{"temperature": NaN}'),
    "infinity": Case(b'{"temperature": -Infinity, "humidity": 3}'),
    "nan_string": Case(reading(temperature="NaN")),
    "huge": Case(b'{"temperature": 1e400}'),
    "huge_humidity": Case(b'{"temperature": 20, "humidity": -1e400}'),
    "long_number": Case(b'{"temperature": ' + b"1" * 1200 + b"}"),
    "deep": Case(b'{"temperature": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    "nul": Case(b'{"temperature": 1, "note": "a\\u0000b"}'),
    "nul_key": Case(b'{"temperature": 1, "\\\\\\u0000": 2}'),
    "hot": Case(reading(sensor_id="a", temperature="hot")),
    "numeric_string": Case(reading(sensor_id="a", temperature="21.5")),
    "bool_value": Case(reading(humidity=True)),
    "bool_id": Case(reading(sensor_id=True, humidity=1)),
    "float_id": Case(reading(sensor_id=4.0, humidity=1)),
    "big_id": Case(b'{"device_id": 9223372036854775808, "humidity": 1}'),
    "missing": Case(reading(sensor_id="a")),
    "only_nulls": Case(reading(temperature=None, humidity=None)),
    "too_hot": Case(reading(temperature=999.0)),
    "too_dry": Case(reading(humidity=-0.5)),
    "bad_ts": Case(reading(temperature=1, timestamp="yesterday")),
    "naive_iso": Case(reading(temperature=1, timestamp="2024-04-12T11:35:12")),
    "iso_line_break": Case(reading(temperature=1, timestamp="2024-04-12T11:35:12Z\n")),
    "iso_far_offset": Case(reading(temperature=1, timestamp="2024-04-12T11:35:12+18:30")),
    "bool_ts": Case(reading(temperature=1, timestamp=True)),
    "far_ts": Case(reading(temperature=1, timestamp=1e30)),
    "negative_ts": Case(reading(temperature=1, timestamp=-5)),
    "number": Case(b"42"),
    "string": Case(b'"just text"'),
    "empty_batch": Case(b"[]"),
    "nested_envelope": Case(envelope(json.loads(envelope(READING)))),
    "base64_envelope": Case(b64(envelope(READING)).encode()),
    "envelope_number": Case(envelope(7)),
    "envelope_null": Case(b'{"schema": null, "payload": null}'),
}
OFFSET = {name: offset for offset, name in enumerate(CASES)}

EXPECTED_REJECTS = {
    "empty": "empty",
    "null_value": "empty",
    "blank": "empty",
    "too_large": "payload_too_large",
    "not_utf8": "undecodable",
    "base64_not_utf8": "undecodable",
    "bad_padding": "undecodable",
    "not_base64": "undecodable",
    "base64_not_json": "not_json",
    "truncated": "not_json",
    "trailing": "not_json",
    "two_values": "not_json",
    "forged_end": "not_json",
    "nan": "not_json",
    "infinity": "not_json",
    "nan_string": "wrong_type",
    "huge": "not_finite",
    "huge_humidity": "not_finite",
    "long_number": "not_json",
    "deep": "not_json",
    "nul": "not_json",
    "nul_key": "not_json",
    "hot": "wrong_type",
    "numeric_string": "wrong_type",
    "bool_value": "wrong_type",
    "bool_id": "wrong_type",
    "float_id": "wrong_type",
    "big_id": "wrong_type",
    "missing": "missing_values",
    "only_nulls": "missing_values",
    "too_hot": "out_of_range",
    "too_dry": "out_of_range",
    "bad_ts": "bad_timestamp",
    "naive_iso": "bad_timestamp",
    "iso_line_break": "bad_timestamp",
    "iso_far_offset": "bad_timestamp",
    "bool_ts": "bad_timestamp",
    "far_ts": "bad_timestamp",
    "negative_ts": "bad_timestamp",
    "number": "not_an_object",
    "string": "undecodable",
    "empty_batch": "empty",
    "nested_envelope": "nested_envelope",
    "base64_envelope": "nested_envelope",
    "envelope_number": "not_an_object",
    "envelope_null": "not_an_object",
}
"""Single-reading records that must be rejected, with their reason (batches are checked on their own)."""


def record(name: str, partition: int = 2) -> Record:
    """The case as a Kafka record, at its own offset."""
    case = CASES[name]
    headers: list[tuple[str, bytes | None]] = []
    if case.topic is not None:
        headers.append((HEADER_TOPIC, case.topic if isinstance(case.topic, bytes) else case.topic.encode()))
    if case.received is not None:
        headers.append((HEADER_RECEIVED_AT, case.received.encode()))
    return Record(case.value, KAFKA_TS, tuple(headers), "sensor-data", partition, OFFSET[name])
