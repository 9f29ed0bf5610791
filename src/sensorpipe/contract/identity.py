"""Which sensor a reading belongs to: one rule for the bridge's Kafka key and the stream job's `sensor_id`.

The rule (docs/design.md, "Data contract"), first that gives one:

1. the reading's `sensor_id`, else its `device_id`: a non-empty string, or an integer that fits 64 bits
   (as its decimal text); an empty string or JSON null counts as absent, any other type is invalid;
2. the topic's id: the level of the MQTT topic at the `+` of a subscription of the bridge (`mqtt.topic`,
   then `mqtt.legacy_topic`) — `sensors/<id>/data`; a subscription with `#` names no sensor, nor does
   a level with U+0000;
3. the configured default (`readings.default_sensor_id`).

The stream job applies it to each reading (each element of a batch), with the topic from the bridge's
header. The bridge applies it to key each Kafka record, so that one sensor's readings share a partition,
in order; it reads the payload only as far as it must, so its key is the stream's `sensor_id` for every
plain JSON reading up to `MAX_KEYED_BYTES`, and a hint otherwise: a batch (array) is keyed by its topic
id, else the default; so are encoded payloads (base64, envelopes), larger ones and invalid ones.

On a secure stack each sensor may publish on its own topic only (the broker's ACL); the payload's id
still comes first here: refusing a payload that names another sensor (`identity_mismatch`) is not
implemented yet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sensorpipe.config import MqttSettings
from sensorpipe.contract.json_text import Number

__all__ = [
    "ID_FIELDS",
    "MAX_KEYED_BYTES",
    "SensorKeys",
    "TopicIds",
    "id_subscriptions",
    "payload_sensor_id",
    "sensor_id",
    "sensor_id_of",
    "topic_for",
    "topic_pattern",
]

ID_FIELDS = ("sensor_id", "device_id")
MAX_KEYED_BYTES = 4096
"""The bridge reads the id of payloads up to this size; a larger one is keyed by its topic."""
_MAX_CACHED = 100_000
_LONG = range(-(2**63), 2**63)


def sensor_id_of(value: object) -> str | None:
    """The id an id field holds, None when it holds none (absent or invalid).

    `value` as json_text parses it, or as Python's json module does (the bridge's fast path: for every
    payload the contract accepts, both give the same id).
    """
    if isinstance(value, str):
        return value or None
    if isinstance(value, Number):
        return str(int(value.text)) if value.is_long else None
    if isinstance(value, int) and not isinstance(value, bool) and value in _LONG:
        return str(value)
    return None


def is_id_type(value: object) -> bool:
    """A value an id field may hold: a string, an integer that fits 64 bits, or null (absent)."""
    return value is None or isinstance(value, str) or (isinstance(value, Number) and value.is_long)


def payload_sensor_id(reading: Mapping[str, object]) -> str | None:
    """The id a reading names: its `sensor_id`, else its `device_id`."""
    for name in ID_FIELDS:
        found = sensor_id_of(reading.get(name))
        if found is not None:
            return found
    return None


def sensor_id(payload_id: str | None, topic_id: str | None, default: str) -> str:
    """The rule: the payload's id, else the topic's, else the default."""
    return payload_id or topic_id or default


def id_subscriptions(mqtt: MqttSettings) -> tuple[str, ...]:
    """The bridge's subscriptions, in the order they name a sensor."""
    return tuple(topic for topic in (mqtt.topic, mqtt.legacy_topic) if topic)


def topic_pattern(subscription: str) -> str | None:
    """A regex whose group 1 is the first `+` level of a subscription; None when it has none (or a `#`).

    Unanchored, and the same syntax in Python and Java: every other character that is not a letter or
    a digit is escaped one by one; another `+` level matches any one level.
    """
    levels = subscription.split("/")
    if "+" not in levels or "#" in levels:
        return None
    pattern = ["[^/]*" if level == "+" else "".join(c if c.isalnum() else "\\" + c for c in level) for level in levels]
    pattern[levels.index("+")] = "([^/\\x00]+)"  # a level with U+0000 names no sensor (see TopicIds)
    return "/".join(pattern)


def topic_for(subscription: str, sender: str) -> str:
    """The topic a sensor (or gateway) publishes on: the subscription with its first + level filled in."""
    levels = subscription.split("/")
    levels[levels.index("+")] = sender
    return "/".join(levels)


class TopicIds:
    """The sensor id of a topic under some subscriptions (see `topic_pattern`).

    A level with U+0000 names no sensor: MQTT forbids the character in topics, so only another Kafka
    producer can send one, and PostgreSQL cannot store it in `sensor_id`.
    """

    def __init__(self, subscriptions: Sequence[str]) -> None:
        self.patterns = tuple(p for p in map(topic_pattern, subscriptions) if p is not None)
        self._compiled = tuple(re.compile(p, re.DOTALL) for p in self.patterns)

    def of(self, topic: str | None) -> str | None:
        if topic is None:
            return None
        for pattern in self._compiled:
            match = pattern.fullmatch(topic)
            if match:
                return match[1]
        return None


class SensorKeys:
    """The bridge's Kafka key of a message: `sensor_id` of the rule above, from its topic and payload.

    A fleet has few topics: a topic's id is remembered per topic (up to `_MAX_CACHED` topics, then the
    memory starts over).
    """

    def __init__(self, subscriptions: Sequence[str], default_sensor_id: str) -> None:
        self.default_sensor_id = default_sensor_id
        self._topics = TopicIds(subscriptions)
        self._by_topic: dict[str, str | None] = {}

    def key(self, topic: str, payload: bytes) -> str:
        return sensor_id(self._payload_id(payload), self._topic_id(topic), self.default_sensor_id)

    def _topic_id(self, topic: str) -> str | None:
        if topic in self._by_topic:
            return self._by_topic[topic]
        if len(self._by_topic) >= _MAX_CACHED:
            self._by_topic.clear()
        found = self._by_topic[topic] = self._topics.of(topic)
        return found

    @staticmethod
    def _payload_id(payload: bytes) -> str | None:
        """The id of a plain JSON reading; None for anything else (batches, encoded, huge, invalid)."""
        if len(payload) > MAX_KEYED_BYTES or not payload.lstrip(b" \t\n\r").startswith(b"{"):
            return None
        # No id field can be named without `_id` unless an escape spells it: skip parsing the rest.
        if b"_id" not in payload and b"\\u" not in payload:
            return None
        # Python's own parser, in C: three times as fast as json_text.parse, and it differs only on payloads the
        # stream job rejects anyway (duplicate keys, lone surrogates), whose key does not matter.
        try:
            reading = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return None
        return payload_sensor_id(reading) if isinstance(reading, dict) else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
