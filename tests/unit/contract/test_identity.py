"""Which sensor a reading belongs to: the payload's id, else the topic's, else the default; for the bridge's key too."""

from __future__ import annotations

import re

import pytest

from sensorpipe.config import load_settings
from sensorpipe.contract.identity import (
    SensorKeys,
    TopicIds,
    id_subscriptions,
    payload_sensor_id,
    sensor_id_of,
    topic_for,
    topic_pattern,
)
from sensorpipe.contract.json_text import parse

KEYS = SensorKeys(("sensors/+/data", "sensors/data"), "default")


@pytest.mark.parametrize(
    ("topic", "payload", "key"),
    [
        ("sensors/s-17/data", b'{"temperature": 20}', "s-17"),
        ("sensors/s-17/data", b'{"sensor_id": "other"}', "other"),
        ("sensors/s-17/data", b' {"device_id": 42, "temperature": 1}', "42"),
        ("sensors/s-17/data", b'{"sensor_id": "", "device_id": "d"}', "d"),
        ("sensors/s-17/data", b'{"sensor\\u005fid": "escaped"}', "escaped"),
        ("sensors/gw-1/data", b'[{"sensor_id": "a"}, {"sensor_id": "b"}]', "gw-1"),
        ("sensors/data", b'{"sensor_id": "kitchen", "temperature": 21.5}', "kitchen"),
        ("sensors/data", b'{"device_id": 42}', "42"),
        ("sensors/data", b'{"device_id": -0}', "0"),
        ("sensors/data", b'{"temperature": 25.3, "humidity": 65.4, "timestamp": 1712921712.123}', "default"),
        ("sensors/data", b"not json at all", "default"),
        ("sensors/data", b"\xff\xfe\x00binary", "default"),
        ("sensors/data", b"", "default"),
        ("sensors/data", b'[{"sensor_id": "a"}]', "default"),
        ("sensors/data", b'{"sensor_id": true}', "default"),
        ("sensors/data", b'{"sensor_id": ""}', "default"),
        ("sensors/data", b'{"sensor_id": 1.0}', "default"),
        ("sensors/data", b'{"sensor_id": 9223372036854775808}', "default"),
        ("sensors//data", b"{}", "default"),
        ("sensors/a/b/data", b"{}", "default"),
    ],
)
def test_key_follows_the_data_contract(topic: str, payload: bytes, key: str) -> None:
    assert KEYS.key(topic, payload) == key


def test_custom_subscriptions_take_the_wildcard_level() -> None:
    keys = SensorKeys(("site-a/+/telemetry",), "unknown")
    assert keys.key("site-a/pump-3/telemetry", b"{}") == "pump-3"
    assert keys.key("elsewhere/x", b"{}") == "unknown"


def test_huge_payloads_are_keyed_by_their_topic() -> None:
    big = b'{"sensor_id": "big", "pad": "' + b"x" * 10_000 + b'"}'
    assert KEYS.key("sensors/s-1/data", big) == "s-1"
    assert KEYS.key("sensors/data", big) == "default"


def test_a_remembered_topic_keeps_its_id_and_payloads_are_read_each_time() -> None:
    keys = SensorKeys(("sensors/+/data", "sensors/data"), "default")
    assert keys.key("sensors/s-1/data", b"") == "s-1"
    assert keys.key("sensors/s-1/data", b'{"sensor_id": "x"}') == "x"
    assert keys.key("sensors/s-1/data", b"{}") == "s-1"
    assert keys.key("sensors/data", b'{"sensor_id": "a"}') == "a"
    assert keys.key("sensors/data", b'{"sensor_id": "b"}') == "b"


@pytest.mark.parametrize(
    ("field", "found"),
    [
        ('"s-1"', "s-1"),
        ('""', None),
        ("42", "42"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("9223372036854775808", None),
        ("4.0", None),
        ("4e0", None),
        ("true", None),
        ("null", None),
        ("[1]", None),
    ],
)
def test_an_id_is_a_non_empty_string_or_a_64_bit_integer(field: str, found: str | None) -> None:
    assert sensor_id_of(parse(field)) == found


def test_sensor_id_comes_before_device_id() -> None:
    assert payload_sensor_id(parse('{"device_id": "d", "sensor_id": "s"}')) == "s"
    assert payload_sensor_id(parse('{"device_id": "d", "sensor_id": null}')) == "d"
    assert payload_sensor_id(parse('{"temperature": 1}')) is None


@pytest.mark.parametrize(
    ("subscription", "topic", "sensor_id"),
    [
        ("sensors/+/data", "sensors/s-17/data", "s-17"),
        ("sensors/+/data", "sensors/data", None),
        ("sensors/+/data", "sensors/a/b/data", None),
        ("sensors/+/data", "xsensors/s-1/data", None),
        ("sensors/+/data", "sensors/s-1/datax", None),
        ("sensors/+/data", "sensors//data", None),
        ("sensors/+/data", "sensors/s-1/data\n", None),
        ("sensors/+/data", "sensors/a\nb/data", "a\nb"),
        ("sensors/+/data", "sensors/a\x00b/data", None),
        ("plant.1/+", "plant.1/kitchen", "kitchen"),
        ("plant.1/+", "plantx1/kitchen", None),
        ("+/temp (°C)", "s9/temp (°C)", "s9"),
        ("site/+/+/data", "site/a/b/data", "a"),
        ("site/+/+/data", "site/a//data", "a"),
    ],
)
def test_the_plus_level_is_the_sensor_id(subscription: str, topic: str, sensor_id: str | None) -> None:
    assert TopicIds((subscription,)).of(topic) == sensor_id
    pattern = topic_pattern(subscription)
    assert pattern is not None
    # The stream job anchors the same pattern for Java: ^(?:…)\z; Python's \Z is Java's \z.
    found = re.search(f"^(?:{pattern})\\Z", topic)
    assert (found[1] if found else None) == sensor_id


@pytest.mark.parametrize("subscription", ["sensors/data", "sensors/#", "sensors/+/#", "sensors/s+/data"])
def test_no_plus_level_means_no_topic_id(subscription: str) -> None:
    assert topic_pattern(subscription) is None
    assert TopicIds((subscription,)).of("sensors/x/data") is None


def test_the_subscriptions_are_the_bridges_in_order() -> None:
    settings = load_settings({"mqtt": {"topic": "a/+/data", "legacy_topic": "b/+"}})
    assert id_subscriptions(settings.mqtt) == ("a/+/data", "b/+")
    assert TopicIds(id_subscriptions(settings.mqtt)).of("b/x") == "x"
    assert id_subscriptions(load_settings({"mqtt": {"legacy_topic": ""}}).mqtt) == ("sensors/+/data",)


def test_a_sensor_publishes_on_the_subscription_with_its_id() -> None:
    assert topic_for("sensors/+/data", "greenhouse-04") == "sensors/greenhouse-04/data"
    assert TopicIds(("sensors/+/data",)).of(topic_for("sensors/+/data", "greenhouse-04")) == "greenhouse-04"
