"""Idempotent creation of the pipeline's Kafka topics (the original stack's problem 3).

Partitions, replication and retention come from the `[kafka]` settings. A topic that already exists
is left as it is; one with fewer partitions than configured is reported, since Kafka can add
partitions but sensorpipe will not do it behind the user's back (keys would move between partitions).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from sensorpipe.clients.kafka_client import KafkaError, client_config, cluster_metadata
from sensorpipe.config import KafkaSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicOutcome:
    topic: str
    created: bool
    partitions: int
    warning: str | None = None


def pipeline_topics(settings: KafkaSettings) -> list[str]:
    return [settings.topic, settings.dlq_topic]


def create_missing(
    admin: AdminClient, settings: KafkaSettings, topics: list[NewTopic], timeout_s: float = 15.0
) -> set[str]:
    """Create `topics`; one that exists already (or appears meanwhile) is not an error. Returns those created.

    Raises KafkaError when Kafka refuses, or does not answer within `timeout_s`.
    """
    if not topics:
        return set()
    created = set()
    for name, future in admin.create_topics(topics, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as e:
            error = e.args[0]
            if error.name() == "TOPIC_ALREADY_EXISTS":
                continue
            raise KafkaError(f"Kafka at {settings.bootstrap_servers} refused to create {name}: {error.str()}") from e
        except TimeoutError as e:  # no broker answered at all
            raise KafkaError(
                f"Kafka at {settings.bootstrap_servers} did not answer within {timeout_s:g}s when asked to create"
                f" {name}: is `sensorpipe stack up` running? (or check kafka.bootstrap_servers)"
            ) from e
        logger.info("created topic %s", name)
        created.add(name)
    return created


def create_topics(settings: KafkaSettings, timeout_s: float = 15.0) -> list[TopicOutcome]:
    """Create every pipeline topic that does not exist; describe the ones that do."""
    admin = AdminClient(client_config(settings))
    existing = cluster_metadata(admin, settings, timeout_s).topics
    config = {"retention.ms": str(settings.retention_ms)}
    wanted = [
        NewTopic(name, settings.partitions, settings.replication_factor, config=config)
        for name in pipeline_topics(settings)
        if name not in existing
    ]
    created = create_missing(admin, settings, wanted, timeout_s)
    outcomes = [TopicOutcome(name, True, settings.partitions) for name in created]
    metadata = cluster_metadata(admin, settings, timeout_s).topics
    for name in pipeline_topics(settings):
        if name in created:
            continue
        partitions = len(metadata[name].partitions)
        warning = None
        if partitions < settings.partitions:
            warning = (
                f"topic {name} has {partitions} partition(s), fewer than the configured {settings.partitions}:"
                " parallelism is capped there; add partitions with Kafka's tools if you want them"
            )
            logger.warning(warning)
        outcomes.append(TopicOutcome(name, False, partitions, warning))
    return sorted(outcomes, key=lambda o: pipeline_topics(settings).index(o.topic))
