"""The `+` level of the MQTT subscription as a Java regex: the sensor id of a topic, for the stream job."""

from __future__ import annotations

import re

import pytest

from sensorpipe.stream.decode import topic_id_regex


@pytest.mark.parametrize(
    ("subscription", "topic", "sensor_id"),
    [
        ("sensors/+/data", "sensors/s-17/data", "s-17"),
        ("sensors/+/data", "sensors/data", None),
        ("sensors/+/data", "sensors/a/b/data", None),
        ("sensors/+/data", "xsensors/s-1/data", None),
        ("sensors/+/data", "sensors/s-1/datax", None),
        ("sensors/+/data", "sensors//data", None),
        ("plant.1/+", "plant.1/kitchen", "kitchen"),
        ("plant.1/+", "plantx1/kitchen", None),
        ("+/temp (°C)", "s9/temp (°C)", "s9"),
    ],
)
def test_the_plus_level_is_the_sensor_id(subscription: str, topic: str, sensor_id: str | None) -> None:
    regex = topic_id_regex(subscription)
    assert regex is not None
    found = re.search(regex, topic)  # the same syntax in Python as in Java for what it builds
    assert (found[1] if found else None) == sensor_id


@pytest.mark.parametrize("subscription", ["sensors/data", "sensors/#", "sensors/+/#", "sensors/s+/data"])
def test_no_plus_level_means_no_topic_id(subscription: str) -> None:
    assert topic_id_regex(subscription) is None
