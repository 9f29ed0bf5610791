"""Kafka client configuration built one way from settings, and errors that say what to do."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata, OffsetSpec

from sensorpipe.config import KafkaSettings


class KafkaError(RuntimeError):
    """Kafka could not be reached or refused a request; the message says why and what to do."""


def client_config(settings: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """librdkafka settings shared by every producer, consumer and admin client of sensorpipe.

    librdkafka's own log lines go through Python logging (`sensorpipe.librdkafka`), not raw to stderr.
    """
    return {"bootstrap.servers": settings.bootstrap_servers, "logger": _librdkafka_logger, **extra}


_librdkafka_logger = logging.getLogger("sensorpipe.librdkafka")


def cluster_metadata(admin: AdminClient, settings: KafkaSettings, timeout_s: float) -> ClusterMetadata:
    """One metadata request, or a KafkaError that says what to do."""
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as e:
        raise KafkaError(
            f"Kafka at {settings.bootstrap_servers} did not answer a metadata request ({e.args[0].str()}):"
            " is `sensorpipe stack up` running?"
        ) from e


def cluster_summary(settings: KafkaSettings, timeout_s: float = 3.0) -> str:
    """The health check of the broker."""
    metadata = cluster_metadata(AdminClient(client_config(settings, log_level=0)), settings, timeout_s)
    return f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)"


def watermarks(settings: KafkaSettings, topic: str, timeout_s: float = 5.0) -> dict[int, tuple[int, int]] | None:
    """Each partition's (first offset Kafka still retains, next offset it will write); None without the topic."""
    admin = AdminClient(client_config(settings, log_level=0))
    found = cluster_metadata(admin, settings, timeout_s).topics.get(topic)
    if found is None or found.error is not None:
        return None
    ends: list[dict[int, int]] = []
    for spec in (OffsetSpec.earliest(), OffsetSpec.latest()):  # type: ignore[no-untyped-call]
        futures = admin.list_offsets(
            {TopicPartition(topic, p): spec for p in found.partitions}, request_timeout=timeout_s
        )
        try:
            ends.append({tp.partition: future.result().offset for tp, future in futures.items()})
        except KafkaException as e:
            raise KafkaError(
                f"Kafka at {settings.bootstrap_servers} did not list the offsets of {topic} ({e.args[0].str()}):"
                " check the broker's log"
            ) from e
    low, high = ends
    return {partition: (low[partition], high[partition]) for partition in sorted(found.partitions)}
