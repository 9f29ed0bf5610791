"""Kafka headers the bridge writes on every record it forwards, and the stream job reads.

Both are UTF-8 text. A record without them (another producer) has no topic id and no receive time:
the configured default id and the record's own Kafka timestamp stand in.
"""

from __future__ import annotations

__all__ = ["HEADER_RECEIVED_AT", "HEADER_TOPIC"]

HEADER_TOPIC = "mqtt_topic"
"""The MQTT topic the message was published on: the sensor id of `sensors/<id>/data` (contract/identity.py)."""
HEADER_RECEIVED_AT = "mqtt_received_at_ms"
"""When the bridge received the message, epoch milliseconds in decimal digits: the time of a reading without one."""
