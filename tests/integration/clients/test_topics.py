"""`sensorpipe topics create`: the pipeline topics exist afterwards, as configured, and a rerun changes nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from sensorpipe.clients.kafka_client import client_config
from sensorpipe.config import Settings
from tests.support import sensorpipe

pytestmark = pytest.mark.integration


def test_create_is_idempotent_and_uses_the_configured_layout(stack_config: Path, stack_settings: Settings) -> None:
    suffix = uuid.uuid4().hex[:8]
    flags = [
        "--set",
        f"kafka.topic=data-{suffix}",
        "--set",
        f"kafka.dlq_topic=dlq-{suffix}",
        "--set",
        "kafka.partitions=4",
        "--set",
        "kafka.retention_ms=3600000",
    ]
    first = sensorpipe(*flags, "topics", "create", "--json", config=stack_config)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [(t["topic"], t["created"], t["partitions"]) for t in json.loads(first.stdout)] == [
        (f"data-{suffix}", True, 4),
        (f"dlq-{suffix}", True, 4),
    ]

    second = sensorpipe(*flags, "topics", "create", "--json", config=stack_config)
    assert second.returncode == 0, second.stdout + second.stderr
    assert [(t["created"], t["warning"]) for t in json.loads(second.stdout)] == [(False, None), (False, None)]

    admin = AdminClient(client_config(stack_settings.kafka))
    resource = ConfigResource(ConfigResource.Type.TOPIC, f"data-{suffix}")
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["retention.ms"].value == "3600000"


def test_fewer_partitions_than_configured_is_a_warning(stack_config: Path, stack_settings: Settings) -> None:
    name = f"narrow-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(client_config(stack_settings.kafka))
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=10)
    result = sensorpipe(
        "--set", f"kafka.topic={name}", "--set", "kafka.partitions=3", "topics", "create", config=stack_config
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"topic {name} has 1 partition(s), fewer than the configured 3" in result.stdout


def test_broker_down_is_a_clear_error(stack_config: Path) -> None:
    result = sensorpipe(
        "--set", "kafka.bootstrap_servers=127.0.0.1:1", "topics", "create", config=stack_config, timeout_s=60
    )
    assert result.returncode == 1
    assert "Kafka at 127.0.0.1:1 did not answer" in result.stderr
    assert "is `sensorpipe stack up` running?" in result.stderr
    assert "Traceback" not in result.stderr
