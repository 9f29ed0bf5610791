"""Topic creation against a port where no broker listens: one clear error, within the timeout."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from sensorpipe.clients.kafka_client import KafkaError, client_config
from sensorpipe.clients.topics import create_missing
from sensorpipe.config import Settings
from tests.support import free_port


def test_no_broker_is_a_kafka_error_that_says_what_to_do() -> None:
    kafka = Settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"}).kafka
    start = time.monotonic()
    with pytest.raises(KafkaError, match=r"did not answer within 1s when asked to create t: is `sensorpipe stack up`"):
        create_missing(AdminClient(client_config(kafka, log_level=0)), kafka, [NewTopic("t", 1, 1)], timeout_s=1.0)
    assert time.monotonic() - start < 5
