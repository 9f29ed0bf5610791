"""`sensorpipe tail mqtt|kafka` against the real Mosquitto and Kafka: every byte shown, errors that say what to do.

The tail runs as a user would run it (a subprocess); tests wait for the line it prints once it is
subscribed, never for a fixed time.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from sensorpipe.clients.kafka_client import client_config
from sensorpipe.clients.mqtt_client import connect, make_client
from sensorpipe.config import MqttSettings, Settings
from tests.support import PrivateBroker, sensorpipe

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0  # only ever a bound on a hang, never a timing that is asserted
BINARY = b"\xff\xfe\x00\x80 not utf-8 \xc3"


class Tail:
    """`sensorpipe [--set ...] tail ...` run as a user would; stderr read as it comes, to see it subscribed."""

    def __init__(self, config: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sensorpipe", "--config", str(config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._stderr = b""
        self._seen_up_to = 0

    def wait_for(self, needle: bytes) -> None:
        """Until `needle` shows up on stderr after the previous one; fails if the tail ends or hangs first."""
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        deadline = time.monotonic() + DEADLINE_S
        while needle not in self._stderr[self._seen_up_to :]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {needle!r} on stderr; so far: {self._stderr!r}")
            if select.select([fd], [], [], remaining)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    pytest.fail(f"tail exited ({self.process.wait()}) before {needle!r}; stderr: {self._stderr!r}")
                self._stderr += chunk
        self._seen_up_to = self._stderr.index(needle, self._seen_up_to) + len(needle)

    def finish(self) -> tuple[list[dict[str, Any]], str]:
        """Wait for a `--count` tail to exit 0: its JSON lines and its whole stderr."""
        stdout, rest = self.process.communicate(timeout=DEADLINE_S)
        stderr = (self._stderr + rest).decode()
        assert self.process.returncode == 0, stderr
        return [json.loads(line) for line in stdout.decode("ascii").splitlines()], stderr

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    """Tails a test started; any still running when it ends (a failed test) are stopped."""
    started: list[Tail] = []
    yield started
    for tail in started:
        tail.stop()


def payload_of(record: dict[str, Any], field: str = "payload") -> bytes | None:
    if f"{field}_base64" in record:
        return base64.b64decode(record[f"{field}_base64"])
    value = record[field]
    return None if value is None else str(value).encode()


def publish(settings: MqttSettings, messages: list[tuple[str, bytes, int, bool]]) -> None:
    """Publish (topic, payload, qos, retain) one after the other, each written and acknowledged before the next."""
    client = make_client(settings, f"tail-test-pub-{uuid.uuid4().hex[:8]}")
    connect(client, settings.host, settings.port)
    client.loop_start()
    try:
        for topic, payload, qos, retain in messages:
            info = client.publish(topic, payload, qos=qos, retain=retain)
            info.wait_for_publish(timeout=10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_tail_mqtt_json_shows_each_message_byte_for_byte(
    stack_config: Path, stack_settings: Settings, tails: list[Tail]
) -> None:
    base = f"tail-test/{uuid.uuid4().hex[:8]}"
    reading = b'{"temperature": 21.5, "humidity": 40.2}'
    text = "température ✓\nsecond line".encode()
    publish(stack_settings.mqtt, [(f"{base}/retained", reading, 1, True)])
    try:
        tail = Tail(stack_config, "tail", "mqtt", "--topic", f"{base}/#", "--count", "3", "--json")
        tails.append(tail)
        tail.wait_for(b"subscribed to")
        publish(stack_settings.mqtt, [(f"{base}/binary", BINARY, 0, False), (f"{base}/text", text, 1, False)])
        records, stderr = tail.finish()
    finally:
        publish(stack_settings.mqtt, [(f"{base}/retained", b"", 1, True)])  # clears the retained message

    assert len(records) == 3
    by_topic = {r["topic"]: r for r in records}
    assert set(by_topic) == {f"{base}/retained", f"{base}/binary", f"{base}/text"}
    expected = {"retained": (reading, 1, True), "binary": (BINARY, 0, False), "text": (text, 1, False)}
    for name, (payload, qos, retain) in expected.items():
        record = by_topic[f"{base}/{name}"]
        assert payload_of(record) == payload
        assert (record["source"], record["qos"], record["retain"], record["size"]) == (
            "mqtt",
            qos,
            retain,
            len(payload),
        )
    assert "payload_base64" in by_topic[f"{base}/binary"]
    assert by_topic[f"{base}/text"]["payload"] == text.decode()
    assert "3 message(s)" in stderr


def test_tail_kafka_from_beginning_shows_keys_headers_offsets(
    stack_config: Path, stack_settings: Settings, tails: list[Tail]
) -> None:
    topic = f"tail-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(client_config(stack_settings.kafka))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=10)
    sent: list[tuple[bytes | None, bytes, list[tuple[str, str | bytes | None]]]] = [
        (b"s1", b'{"temperature": 20.0}', [("mqtt_topic", b"sensors/s1/data"), ("mqtt_received_at_ms", b"1")]),
        (None, BINARY, [("raw", b"\xff\x00")]),
        (b"\xfe-key", "ünïcode ✓".encode(), []),
    ]
    producer = Producer(client_config(stack_settings.kafka, acks="all"))
    for key, value, headers in sent:
        producer.produce(topic, value, key, partition=0, headers=headers)
    assert producer.flush(10) == 0

    tail = Tail(stack_config, "tail", "kafka", "--topic", topic, "--from-beginning", "--count", "3", "--json")
    tails.append(tail)
    records, stderr = tail.finish()

    assert [(r["topic"], r["partition"], r["offset"]) for r in records] == [(topic, 0, 0), (topic, 0, 1), (topic, 0, 2)]
    for record, (key, value, headers) in zip(records, sent, strict=True):
        assert payload_of(record) == value
        assert payload_of(record, "key") == key
        assert [(h["key"], payload_of(h, "value")) for h in record["headers"]] == headers
        assert record["size"] == len(value)
        assert record["timestamp"] is not None
    assert "payload_base64" in records[1]
    assert "key_base64" in records[2]
    assert f"following {topic} (1 partition(s)) from the beginning" in stderr


def test_tail_kafka_starts_at_the_end_by_default(
    stack_config: Path, stack_settings: Settings, tails: list[Tail]
) -> None:
    topic = f"tail-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(client_config(stack_settings.kafka))
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=10)
    producer = Producer(client_config(stack_settings.kafka, acks="all"))
    producer.produce(topic, b"old", partition=0)
    producer.produce(topic, b"old", partition=1)
    assert producer.flush(10) == 0

    tail = Tail(stack_config, "--set", f"kafka.topic={topic}", "tail", "kafka", "--count", "1", "--json")
    tails.append(tail)
    tail.wait_for(b"from the end")
    producer.produce(topic, b"new", partition=1)
    assert producer.flush(10) == 0
    records, _ = tail.finish()

    assert [(r["partition"], r["offset"], r["payload"]) for r in records] == [(1, 1, "new")]


def test_mqtt_broker_down_is_one_clear_error() -> None:
    result = sensorpipe("--set", "mqtt.port=1", "tail", "mqtt", "--json", timeout_s=60)
    assert result.returncode == 1
    assert "MQTT broker at 127.0.0.1:1 refused the connection: is `sensorpipe stack up` running?" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_kafka_broker_down_is_one_clear_error(stack_config: Path) -> None:
    result = sensorpipe(
        "--set", "kafka.bootstrap_servers=127.0.0.1:1", "tail", "kafka", config=stack_config, timeout_s=60
    )
    assert result.returncode == 1
    assert "Kafka at 127.0.0.1:1 did not answer" in result.stderr
    assert "is `sensorpipe stack up` running?" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_kafka_topic_names_it_and_the_fix(stack_config: Path) -> None:
    missing = f"no-such-topic-{uuid.uuid4().hex[:8]}"
    result = sensorpipe("tail", "kafka", "--topic", missing, config=stack_config, timeout_s=60)
    assert result.returncode == 1
    assert f"Kafka topic {missing} does not exist" in result.stderr
    assert "sensorpipe topics create" in result.stderr
    assert "Traceback" not in result.stderr

    configured = sensorpipe("--set", f"kafka.topic={missing}", "tail", "kafka", config=stack_config, timeout_s=60)
    assert configured.returncode == 1
    assert f"Kafka topic {missing} does not exist" in configured.stderr
    assert "create it with `sensorpipe topics create`" in configured.stderr


def test_tail_mqtt_reconnects_when_the_broker_comes_back(
    stack_config: Path, private_broker: PrivateBroker, tails: list[Tail]
) -> None:
    """A broker of its own (the session's is shared), stopped and started again under the tail."""
    private_broker.start()
    port = private_broker.port
    settings = MqttSettings(port=port)
    tail = Tail(stack_config, "--set", f"mqtt.port={port}", "tail", "mqtt", "-t", "t/#", "--count", "1", "--json")
    tails.append(tail)
    tail.wait_for(b"subscribed to")
    private_broker.stop()
    tail.wait_for(b"lost the MQTT broker")
    private_broker.start()
    tail.wait_for(b"reconnected to")
    publish(settings, [("t/after", b"back", 1, False)])
    records, _ = tail.finish()
    assert [(r["topic"], r["payload"]) for r in records] == [("t/after", "back")]


def test_sigterm_stops_tailing_cleanly_with_a_count(
    stack_config: Path, stack_settings: Settings, tails: list[Tail]
) -> None:
    tail = Tail(stack_config, "tail", "mqtt", "--topic", f"tail-test/{uuid.uuid4().hex[:8]}", "--json")
    tails.append(tail)
    tail.wait_for(b"subscribed to")
    tail.process.terminate()
    records, stderr = tail.finish()
    assert records == []
    assert stderr.rstrip().endswith(f"0 message(s) from {stack_settings.mqtt.url}")
    assert "Traceback" not in stderr
