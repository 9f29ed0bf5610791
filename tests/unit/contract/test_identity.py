"""The bridge's Kafka key: the sensor named by the topic, else by the payload, else the default."""

from __future__ import annotations

import pytest

from sensorpipe.contract.identity import SensorKeys, payload_sensor_id

KEYS = SensorKeys(("sensors/+/data", "sensors/data"), "default")


@pytest.mark.parametrize(
    ("topic", "payload", "key"),
    [
        ("sensors/s-17/data", b'{"temperature": 20}', "s-17"),
        ("sensors/s-17/data", b'{"sensor_id": "other"}', "s-17"),
        ("sensors/gw-1/data", b'[{"sensor_id": "a"}, {"sensor_id": "b"}]', "gw-1"),
        ("sensors/data", b'{"sensor_id": "kitchen", "temperature": 21.5}', "kitchen"),
        ("sensors/data", b'{"device_id": 42}', "42"),
        ("sensors/data", b'{"temperature": 25.3, "humidity": 65.4, "timestamp": 1712921712.123}', "default"),
        ("sensors/data", b"not json at all", "default"),
        ("sensors/data", b"\xff\xfe\x00binary", "default"),
        ("sensors/data", b"", "default"),
        ("sensors/data", b'[{"sensor_id": "a"}]', "default"),
        ("sensors/data", b'{"sensor_id": true}', "default"),
        ("sensors/data", b'{"sensor_id": ""}', "default"),
    ],
)
def test_key_follows_the_data_contract(topic: str, payload: bytes, key: str) -> None:
    assert KEYS.key(topic, payload) == key


def test_custom_subscriptions_take_the_wildcard_level() -> None:
    keys = SensorKeys(("site-a/+/telemetry",), "unknown")
    assert keys.key("site-a/pump-3/telemetry", b"{}") == "pump-3"
    assert keys.key("elsewhere/x", b"{}") == "unknown"


def test_huge_payloads_are_not_parsed_for_a_key() -> None:
    big = b'{"sensor_id": "big", "pad": "' + b"x" * 10_000 + b'"}'
    assert payload_sensor_id(big) is None


def test_a_remembered_topic_keeps_its_key_and_legacy_payloads_are_still_read_each_time() -> None:
    keys = SensorKeys(("sensors/+/data", "sensors/data"), "default")
    assert keys.key("sensors/s-1/data", b"") == "s-1"
    assert keys.key("sensors/s-1/data", b'{"sensor_id": "x"}') == "s-1"
    assert keys.key("sensors/data", b'{"sensor_id": "a"}') == "a"
    assert keys.key("sensors/data", b'{"sensor_id": "b"}') == "b"
