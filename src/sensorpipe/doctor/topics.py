"""Problem 3: the pipeline's topics exist, with at least the configured partitions."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from sensorpipe.clients.kafka_client import KafkaError, KafkaLoginError, client_config, cluster_metadata
from sensorpipe.config import Settings
from sensorpipe.doctor.check import Check, failed, passed, split_fix

CREATE = "`sensorpipe topics create`"


def check_topic(settings: Settings, topic: str, timeout_s: float = 5.0) -> Check:
    kafka = settings.kafka
    name = f"topic {topic}"
    try:
        metadata = cluster_metadata(AdminClient(client_config(kafka, log_level=0)), kafka, timeout_s)
    except KafkaLoginError as e:
        return failed(name, *split_fix(str(e)))
    except KafkaError as e:
        cause, _ = split_fix(str(e))
        return failed(name, cause, "start the broker (`sensorpipe stack up`) or set kafka.bootstrap_servers")
    found = metadata.topics.get(topic)
    if found is None:
        return failed(name, f"missing on {kafka.bootstrap_servers}", f"{CREATE} (or set kafka.topic/kafka.dlq_topic)")
    if found.error is not None:
        return failed(
            name,
            f"Kafka at {kafka.bootstrap_servers} reports {found.error.str()} for it",
            "wait for the broker to elect a leader, or check its log; then run doctor again",
        )
    partitions = len(found.partitions)
    if partitions < kafka.partitions:
        return failed(
            name,
            f"{partitions} partition(s), fewer than kafka.partitions = {kafka.partitions}",
            f"add partitions (kafka-topics.sh --alter --topic {topic} --partitions {kafka.partitions})"
            f" or set kafka.partitions = {partitions}",
        )
    return passed(name, f"{partitions} partition(s) on {kafka.bootstrap_servers}")


__all__ = ["check_topic"]
