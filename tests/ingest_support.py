"""Helpers for tests of the ingest half: a bridge process, a publisher that waits for PUBACKs, a topic reader."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from sensorpipe.clients.kafka_client import client_config
from sensorpipe.config import Settings
from sensorpipe.monitoring.scrape import scrape
from sensorpipe.stack import Stack
from sensorpipe.stack.process import stop
from tests.support import free_port


@dataclass(frozen=True)
class Lane:
    """Topics of their own for one test, so tests never see each other's readings or sessions."""

    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")

    @property
    def mqtt_filter(self) -> str:
        return f"{self.name}/+/data"

    def mqtt_topic(self, sensor: str) -> str:
        return f"{self.name}/{sensor}/data"

    @property
    def kafka_topic(self) -> str:
        return f"{self.name}-data"

    @property
    def dlq_topic(self) -> str:
        return f"{self.name}-dlq"

    def flags(self, client_id: str = "bridge") -> list[str]:
        """`--set` flags that point sensorpipe at this lane."""
        pairs = {
            "mqtt.topic": self.mqtt_filter,
            "mqtt.legacy_topic": "",
            "kafka.topic": self.kafka_topic,
            "kafka.dlq_topic": self.dlq_topic,
            "bridge.client_id": f"{self.name}-{client_id}",
            "bridge.status_interval_s": "1",
        }
        return [arg for key, value in pairs.items() for arg in ("--set", f"{key}={value}")]


class BridgeProcess:
    """`sensorpipe bridge` as a user runs it, with its log lines collected as they come."""

    def __init__(
        self, config: Path, lane: Lane, *extra: str, client_id: str = "bridge", sets: tuple[str, ...] = ()
    ) -> None:
        """`extra` are options of `bridge`; `sets` are `section.field=value` settings that win over the lane's."""
        self.metrics_port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sensorpipe",
                "--config",
                str(config),
                *lane.flags(client_id),
                "--set",
                f"bridge.metrics_port={self.metrics_port}",
                *(arg for pair in sets for arg in ("--set", pair)),
                "bridge",
                "--json",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, text: str, timeout_s: float = 60, after: int = 0) -> int:
        """Index of the first log line from `after` on that contains `text`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for index in range(after, len(self.lines)):
                if text in self.lines[index]:
                    return index
            if self.process.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"bridge exited ({self.process.returncode}) before logging {text!r}:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"bridge did not log {text!r} within {timeout_s}s:\n{self.log}")

    def wait_subscribed(self, timeout_s: float = 60) -> None:
        """Until the broker confirmed the subscriptions (SUBACK), as the bridge's gauge says: from then on
        nothing published is missed (its log line comes when the request is sent, not when it is granted)."""
        self.wait_for_log("subscribed to", timeout_s)
        deadline = time.monotonic() + timeout_s
        while scrape("127.0.0.1", self.metrics_port).total("sensorpipe_bridge_mqtt_subscribed") != 1:
            assert self.process.poll() is None, f"bridge exited:\n{self.log}"
            assert time.monotonic() < deadline, f"no SUBACK within {timeout_s}s:\n{self.log}"
            time.sleep(0.05)

    def stop(self, timeout_s: float = 60) -> dict[str, Any]:
        """SIGTERM, as a service manager would; returns the bridge's final totals."""
        self.process.send_signal(signal.SIGTERM)
        stdout, _ = self.process.communicate(timeout=timeout_s)
        self._reader.join(5)
        assert self.process.returncode == 0, f"bridge exited {self.process.returncode}:\n{self.log}"
        totals: dict[str, Any] = json.loads(stdout)
        return totals

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def forwarded(self) -> float:
        """The bridge's own count of messages Kafka confirmed, from its metrics endpoint."""
        for line in self.metrics().splitlines():
            if line.startswith("sensorpipe_bridge_forwarded_total "):
                return float(line.split()[1])
        raise AssertionError("no sensorpipe_bridge_forwarded_total in the bridge's metrics")

    def wait_forwarded(self, at_least: float, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while self.forwarded() < at_least:
            assert time.monotonic() < deadline, f"bridge forwarded fewer than {at_least} in {timeout_s}s:\n{self.log}"
            assert self.process.poll() is None, f"bridge exited:\n{self.log}"
            time.sleep(0.1)

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())


class Publisher:
    """A paho publisher at QoS 1 that knows which messages the broker acknowledged."""

    def __init__(self, settings: Settings) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(100)
        self.client.connect(settings.mqtt.host, settings.mqtt.port)
        self.client.loop_start()
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes) -> None:
        self.infos.append(self.client.publish(topic, payload, qos=1))

    def wait_acknowledged(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        for info in self.infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        missing = sum(1 for info in self.infos if not info.is_published())
        assert missing == 0, f"{missing} of {len(self.infos)} messages not acknowledged by the broker"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    partition: int


def read_topic(
    settings: Settings, topic: str, expected: int, timeout_s: float = 120, settle_s: float = 2.0
) -> list[Record]:
    """Every record of `topic` from the start: at least `expected` unless the timeout passes first.

    After `expected` arrived it keeps reading for `settle_s`, so that extra records (duplicates) show.
    """
    consumer = Consumer(
        client_config(
            settings.kafka,
            **{"group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False, "auto.offset.reset": "earliest"},
        )
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = list(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if len(records) >= expected:
                deadline = min(deadline, time.monotonic() + settle_s)
            for message in consumer.consume(1000, timeout=0.2):
                if message.error():
                    continue
                raw = message.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                headers = {k: v for k, v in pairs if isinstance(v, bytes)}
                records.append(Record(message.key(), message.value() or b"", headers, message.partition() or 0))
    finally:
        consumer.close()
    return records


def restart_service(settings: Settings, name: str) -> None:
    """Stop one service of the local stack the way `stack down` does, then bring the stack up again."""
    stack = Stack(settings)
    service = next(s for s in stack.services if s.name == name)
    stop(service.pid_file, sig=service.stop_signal)
    stack.up()


def simulator(config: Path, lane: Lane, *args: str) -> subprocess.Popen[str]:
    """`sensorpipe simulate ... --json` publishing on the lane's topics."""
    return subprocess.Popen(
        [sys.executable, "-m", "sensorpipe", "--config", str(config), *lane.flags(), "simulate", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
