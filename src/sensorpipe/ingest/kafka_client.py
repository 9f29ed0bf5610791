"""Kafka client configuration built one way from settings, and errors that say what to do."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

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
