"""Rejects onto the dead-letter topic, from the executor that found them.

The stream job's partition writer (stream/sinks.py) publishes its partition's rejects here beside storing
them in `sensor_rejects`, so no reject travels back to the driver and no second Spark job reads the
batch again for them. The task ends only once Kafka has acknowledged every one (`acks=all`); a reject
Kafka refused fails the task, and the micro-batch runs again (at-least-once on this topic: a replay
publishes the same reject again, under the same key).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from sensorpipe.clients.kafka_client import client_config
from sensorpipe.config import KafkaSettings
from sensorpipe.errors import SensorpipeError

__all__ = ["DeadLetterError", "DeadLetters", "dead_letter"]

FLUSH_TIMEOUT_S = 60.0


class DeadLetterError(SensorpipeError):
    """Kafka did not take every reject of a partition: the task fails and its micro-batch runs again."""


def dead_letter(reject: dict[str, Any]) -> tuple[str, bytes]:
    """(key, value) of one reject: keyed by its Kafka coordinates and element, the payload in base64."""
    key = f"{reject['kafka_topic']}:{reject['kafka_partition']}:{reject['kafka_offset']}:{reject['element']}"
    payload = reject["payload"]
    value = {
        "reason": reject["reason"],
        "detail": reject["detail"],
        "payload_base64": None if payload is None else base64.b64encode(payload).decode(),
        "kafka_topic": reject["kafka_topic"],
        "kafka_partition": reject["kafka_partition"],
        "kafka_offset": reject["kafka_offset"],
        "element": reject["element"],
    }
    return key, json.dumps(value).encode()


class DeadLetters:
    """A producer for one partition task's rejects, opened at the first reject; `close` waits for Kafka."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: Producer | None = None
        self._errors: list[str] = []

    def publish(self, rejects: list[dict[str, Any]]) -> None:
        """Queue each reject (a row of REJECT_COLUMNS by name) for the dead-letter topic."""
        if self._producer is None:
            self._producer = Producer(
                client_config(
                    self._settings,
                    **{
                        "enable.idempotence": True,
                        "acks": "all",
                        "linger.ms": 5,
                        # A missing topic fails its messages after this, rather than after the 30 s default.
                        "topic.metadata.propagation.max.ms": 10_000,
                        "message.timeout.ms": int(FLUSH_TIMEOUT_S * 1000),
                    },
                )
            )
        for reject in rejects:
            key, value = dead_letter(reject)
            self._producer.produce(self._settings.dlq_topic, value, key, on_delivery=self._delivered)
            self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._errors.append(error.str())

    def close(self) -> None:
        """Wait until Kafka acknowledged every reject, or raise `DeadLetterError` saying why not."""
        if self._producer is None:
            return
        left = self._producer.flush(FLUSH_TIMEOUT_S)
        if left or self._errors:
            cause = self._errors[0] if self._errors else f"no acknowledgement within {FLUSH_TIMEOUT_S:.0f} s"
            raise DeadLetterError(
                f"Kafka at {self._settings.bootstrap_servers} did not take {left + len(self._errors)} reject(s)"
                f" for topic {self._settings.dlq_topic} ({cause}): is the broker up and the topic there"
                " (`sensorpipe topics create`)? The micro-batch runs again."
            )
