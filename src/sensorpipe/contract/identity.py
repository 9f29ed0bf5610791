"""Which sensor an MQTT message belongs to, decided by the bridge for the Kafka record key.

The key keeps one sensor's readings in one Kafka partition, in order. The data contract names the
sensor by the payload's `sensor_id` (or `device_id`), else by the `<id>` level of `sensors/<id>/data`,
else a configured default. The bridge forwards payloads untouched and reads them only when the topic
names no sensor (the original stack's `sensors/data`): a `+` level of the subscription is enough.
"""

from __future__ import annotations

import json

from paho.mqtt.client import topic_matches_sub

_PAYLOAD_ID_FIELDS = ("sensor_id", "device_id")
_MAX_PARSED_BYTES = 4096
_MAX_CACHED = 100_000


class SensorKeys:
    """Maps a message topic to its key, for the bridge's subscriptions.

    Topic matching is costly in paho and a fleet has few topics, so a key taken from the topic is
    remembered per topic (up to `_MAX_CACHED` topics, then the memory starts over).
    """

    def __init__(self, subscriptions: tuple[str, ...], default_sensor_id: str) -> None:
        self.subscriptions = subscriptions
        self.default_sensor_id = default_sensor_id
        self._by_topic: dict[str, str] = {}

    def key(self, topic: str, payload: bytes) -> str:
        cached = self._by_topic.get(topic)
        if cached is not None:
            return cached
        level = self._sensor_level(topic)
        if level is None:
            return payload_sensor_id(payload) or self.default_sensor_id
        if len(self._by_topic) >= _MAX_CACHED:
            self._by_topic.clear()
        self._by_topic[topic] = level
        return level

    def _sensor_level(self, topic: str) -> str | None:
        for subscription in self.subscriptions:
            levels = subscription.split("/")
            if "+" in levels and topic_matches_sub(subscription, topic):
                level = topic.split("/")[levels.index("+")]
                if level:
                    return level
        return None


def payload_sensor_id(payload: bytes) -> str | None:
    """`sensor_id`/`device_id` of a small JSON object payload; None for anything else (arrays, junk, huge)."""
    if len(payload) > _MAX_PARSED_BYTES or not payload.lstrip().startswith(b"{"):
        return None
    try:
        reading = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(reading, dict):
        return None
    for name in _PAYLOAD_ID_FIELDS:
        value = reading.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None
