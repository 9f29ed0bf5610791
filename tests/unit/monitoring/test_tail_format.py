"""How `sensorpipe tail` renders a message: every byte in JSON, a safe readable line for humans."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from sensorpipe.monitoring.tail import HUMAN_PAYLOAD_CHARS, KafkaRecord, MqttRecord, human_bytes

AT = datetime(2026, 11, 27, 14, 3, 22, 123456, tzinfo=UTC)
BINARY = b"\xff\xfe\x00\x80 not utf-8"


def mqtt_record(payload: bytes, *, retain: bool = False) -> MqttRecord:
    return MqttRecord(received_at=AT, topic="sensors/s1/data", qos=1, retain=retain, payload=payload)


def kafka_record(payload: bytes | None, key: bytes | None = b"s1") -> KafkaRecord:
    headers = (("mqtt_topic", b"sensors/s1/data"), ("raw", b"\xff\x01"), ("empty", None))
    return KafkaRecord("sensor-data", 2, 41, AT, key, headers, payload)


def test_mqtt_json_has_every_field_and_text_payload_as_text() -> None:
    payload = '{"temperature": 21.5, "note": "ünïcode ✓"}'.encode()
    assert mqtt_record(payload, retain=True).to_json() == {
        "source": "mqtt",
        "received_at": "2026-11-27T14:03:22.123+00:00",
        "topic": "sensors/s1/data",
        "qos": 1,
        "retain": True,
        "size": len(payload),
        "payload": payload.decode(),
    }


def test_binary_payload_goes_to_base64_and_round_trips_through_json() -> None:
    rendered = json.loads(json.dumps(mqtt_record(BINARY).to_json()))
    assert "payload" not in rendered
    assert base64.b64decode(rendered["payload_base64"]) == BINARY
    assert rendered["size"] == len(BINARY)


def test_json_never_truncates() -> None:
    payload = b"x" * (HUMAN_PAYLOAD_CHARS * 50)
    assert mqtt_record(payload).to_json()["payload"] == payload.decode()


def test_kafka_json_keeps_key_headers_coordinates_and_binary_values() -> None:
    rendered = kafka_record(BINARY).to_json()
    assert rendered == {
        "source": "kafka",
        "topic": "sensor-data",
        "partition": 2,
        "offset": 41,
        "timestamp": "2026-11-27T14:03:22.123+00:00",
        "key": "s1",
        "headers": [
            {"key": "mqtt_topic", "value": "sensors/s1/data"},
            {"key": "raw", "value_base64": base64.b64encode(b"\xff\x01").decode()},
            {"key": "empty", "value": None},
        ],
        "size": len(BINARY),
        "payload_base64": base64.b64encode(BINARY).decode(),
    }


def test_kafka_tombstone_and_missing_key_are_null() -> None:
    rendered = kafka_record(None, key=None).to_json()
    assert (rendered["key"], rendered["payload"], rendered["size"]) == (None, None, 0)


def test_human_line_shows_topic_qos_retain_size_and_text() -> None:
    line = mqtt_record(b'{"t": 1}', retain=True).to_line()
    assert 'sensors/s1/data  qos 1 retained  8 B  {"t": 1}' in line


def test_human_line_marks_binary_and_shows_base64() -> None:
    assert human_bytes(BINARY) == "(binary, base64) " + base64.b64encode(BINARY).decode()


def test_human_line_truncates_long_payloads_and_says_so() -> None:
    payload = b"y" * 1000
    shown = human_bytes(payload, limit=20)
    assert shown == "y" * 20 + "… (truncated, 1000 bytes in all: --json shows everything)"
    assert human_bytes(b"y" * 20, limit=20) == "y" * 20


def test_human_line_escapes_control_characters() -> None:
    line = mqtt_record(b"line one\nline two \x1b[31mred\x1b[0m\ttab").to_line()
    assert "\n" not in line
    assert "\x1b" not in line
    assert "line one\\nline two \\x1b[31mred\\x1b[0m\\ttab" in line


def test_kafka_human_line_has_coordinates_key_and_headers() -> None:
    line = kafka_record(b"{}").to_line()
    assert "sensor-data[2]@41  key=s1  mqtt_topic=sensors/s1/data  raw=(binary, base64) /wE=  empty=(none)" in line
    assert line.endswith("2 B  {}")
