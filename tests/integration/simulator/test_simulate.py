"""`sensorpipe simulate` against real brokers: what a subscriber receives, and what the summary says.

The session stack's Mosquitto serves the plain runs; a private Mosquitto, started and stopped here, plays the
broker that is not there yet, and the one that restarts mid-run.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sensorpipe.clients.mqtt_client import connect, make_client
from sensorpipe.config import MqttSettings, Settings
from sensorpipe.simulator.publisher import Job, Publisher
from sensorpipe.simulator.readings import LEGACY_TOPIC, FleetSpec
from tests.support import STACK_BASES, PrivateBroker, ports_from, sensorpipe, write_config

pytestmark = pytest.mark.integration


class Collector:
    """A real paho subscriber (QoS 1) that keeps every message it receives."""

    def __init__(self, settings: MqttSettings, topic: str, *, persistent: bool = False) -> None:
        self.settings = settings
        self.topic = topic
        self.client = make_client(settings, f"sim-test-{uuid.uuid4().hex[:8]}", clean_session=not persistent)
        self.client.reconnect_delay_set(1, 2)
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *_a: self.subscribed.set()

    def start(self) -> Collector:
        self.subscribed.clear()
        connect(self.client, self.settings.host, self.settings.port)
        self.client.subscribe(self.topic, qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the broker did not acknowledge SUBSCRIBE"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, count: int, timeout_s: float = 60) -> None:
        """Until `count` messages arrived (or the timeout), then until none arrived for a second."""
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        seen = -1
        while seen != len(self.messages):
            seen = len(self.messages)
            time.sleep(1.0)

    def readings(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for _, payload in self.messages:
            decoded = json.loads(payload)
            found.extend(decoded if isinstance(decoded, list) else [decoded])
        return found


def _simulate(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sensorpipe", "--config", str(config), "simulate", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], timeout_s: float = 120) -> tuple[int, dict[str, Any], str]:
    stdout, stderr = process.communicate(timeout=timeout_s)
    assert "Traceback" not in stderr, stderr
    return process.returncode, json.loads(stdout), stderr


def _await_line(process: subprocess.Popen[str], text: str, timeout_s: float = 60) -> str:
    """Read the process's stderr up to a line holding `text`; what was read, for the assertions after."""
    assert process.stderr is not None
    read = ""
    deadline = time.monotonic() + timeout_s
    while text not in read:
        left = deadline - time.monotonic()
        assert left > 0, f"no line with {text!r} within {timeout_s} s:\n{read}"
        if select.select([process.stderr], [], [], left)[0]:
            line = process.stderr.readline()
            assert line, f"stderr ended before a line with {text!r}:\n{read}"
            read += line
    return read


def _in_range(reading: dict[str, Any]) -> bool:
    return bool(-80 <= reading["temperature"] <= 150 and 0 <= reading["humidity"] <= 100)


def test_count_delivers_exactly_that_many_unique_readings_in_range(
    stack_config: Path, stack_settings: Settings
) -> None:
    collector = Collector(stack_settings.mqtt, "sensors/+/data").start()
    try:
        result = sensorpipe(
            "simulate", "--sensors", "20", "--rate", "2000", "--count", "3000", "--qos", "1", "--json",
            config=stack_config,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        collector.wait_for(3000)
    finally:
        collector.stop()
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["acked"], summary["dropped"], summary["unacked"]) == (3000, 3000, 0, 0)
    readings = collector.readings()
    assert len(readings) == 3000
    assert sorted(r["seq"] for r in readings) == list(range(3000))
    assert len({(r["sensor_id"], r["timestamp"]) for r in readings}) == 3000
    assert len({r["sensor_id"] for r in readings}) == 20
    assert all(_in_range(r) for r in readings)
    assert all(topic == f"sensors/{json.loads(p)['sensor_id']}/data" for topic, p in collector.messages)


def test_batches_arrive_as_arrays_from_one_gateway_per_process(stack_config: Path, stack_settings: Settings) -> None:
    collector = Collector(stack_settings.mqtt, "sensors/+/data").start()
    try:
        result = sensorpipe(
            "simulate", "--sensors", "30", "--batch", "10", "--count", "1000", "--rate", "5000",
            "--processes", "2", "--qos", "1", "--json",
            config=stack_config,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        collector.wait_for(100)
    finally:
        collector.stop()
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["readings"], summary["readings_acked"]) == (100, 1000, 1000)
    assert {topic for topic, _ in collector.messages} == {"sensors/gw-01/data", "sensors/gw-02/data"}
    batches = [json.loads(payload) for _, payload in collector.messages]
    assert all(isinstance(b, list) and len({r["sensor_id"] for r in b}) == len(b) == 10 for b in batches)
    assert sorted(r["seq"] for r in collector.readings()) == list(range(1000))


def test_legacy_sends_the_original_payload_on_the_original_topic(stack_config: Path, stack_settings: Settings) -> None:
    collector = Collector(stack_settings.mqtt, LEGACY_TOPIC).start()
    try:
        result = sensorpipe(
            "simulate", "--legacy", "--sensors", "5", "--count", "200", "--rate", "1000", "--qos", "1",
            config=stack_config,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        collector.wait_for(200)
    finally:
        collector.stop()
    assert "sent 200 messages (200 readings, 0 malformed) at QoS 1" in result.stdout
    readings = collector.readings()
    assert len(readings) == 200
    assert all(list(r) == ["temperature", "humidity", "timestamp"] and _in_range(r) for r in readings)
    assert len({r["timestamp"] for r in readings}) == 200


def _defect(payload: bytes) -> str | None:
    """What a strict reader of the data contract would reject in a payload, or None."""
    if not payload:
        return "empty"
    try:
        decoded = json.loads(payload)
    except ValueError:
        return "not-json"
    for reading in decoded if isinstance(decoded, list) else [decoded]:
        if not all(isinstance(reading[k], float) for k in ("temperature", "humidity")):
            return "wrong-type"
        if not _in_range(reading):
            return "out-of-range"
    return None


def test_the_malformed_ratio_is_the_share_of_bad_payloads_in_every_kind(
    stack_config: Path, stack_settings: Settings
) -> None:
    collector = Collector(stack_settings.mqtt, "sensors/+/data").start()
    try:
        result = sensorpipe(
            "simulate", "--sensors", "10", "--count", "1000", "--rate", "5000", "--malformed-ratio", "0.2",
            "--qos", "1", "--json",
            config=stack_config,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        collector.wait_for(1000)
    finally:
        collector.stop()
    assert json.loads(result.stdout)["malformed"] == 200
    assert len(collector.messages) == 1000
    defects = Counter(_defect(payload) for _, payload in collector.messages)
    assert defects == {None: 800, "not-json": 50, "wrong-type": 50, "out-of-range": 50, "empty": 50}


def test_a_simulator_started_before_its_broker_delivers_everything_once_it_is_up(
    private_broker: PrivateBroker,
) -> None:
    # The subscriber's persistent session exists before the broker goes away, so nothing depends on who
    # reconnects first.
    private_broker.start()
    collector = Collector(private_broker.settings.mqtt, "sensors/+/data", persistent=True).start()
    collector.stop()
    private_broker.stop()

    process = _simulate(private_broker.config, "--count", "500", "--rate", "200", "--qos", "1")
    port = private_broker.settings.mqtt.port
    before = _await_line(process, f"cannot reach MQTT broker at 127.0.0.1:{port}")
    private_broker.start()
    collector.start()
    try:
        code, summary, after = _finish(process)
        collector.wait_for(500)
    finally:
        collector.stop()
    stderr = before + after
    assert f"connected to mqtt://127.0.0.1:{port} after" in stderr
    assert code == 0, stderr
    assert (summary["sent"], summary["acked"], summary["dropped"], summary["unacked"]) == (500, 500, 0, 0)
    assert sorted({r["seq"] for r in collector.readings()}) == list(range(500))


def test_a_broker_restart_mid_run_is_survived_and_every_acked_reading_arrives(
    private_broker: PrivateBroker,
) -> None:
    private_broker.start()
    collector = Collector(private_broker.settings.mqtt, "sensors/+/data", persistent=True).start()
    process = _simulate(private_broker.config, "--count", "2000", "--rate", "400", "--qos", "1")
    try:
        deadline = time.monotonic() + 30
        while len(collector.messages) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        private_broker.stop()
        time.sleep(1.5)
        private_broker.start()
        code, summary, stderr = _finish(process)
        collector.wait_for(2000)
    finally:
        collector.stop()
    assert "connection lost" in stderr
    assert f"reconnected to mqtt://127.0.0.1:{private_broker.settings.mqtt.port}" in stderr
    assert summary["reconnects"] >= 1
    assert summary["acked"] + summary["dropped"] + summary["unacked"] == summary["sent"] == 2000
    assert code == 0, stderr
    assert summary["acked"] == 2000
    assert sorted({r["seq"] for r in collector.readings()}) == list(range(2000))


def test_a_full_buffer_while_the_broker_is_down_is_reported_as_loss(tmp_path: Path) -> None:
    config = write_config(tmp_path, ports_from(STACK_BASES["unreachable"]))  # nothing listens there
    process = _simulate(config, "--count", "300", "--rate", "1000", "--buffer", "50", "--drain-timeout", "1")
    code, summary, stderr = _finish(process)
    assert code == 1
    assert (summary["sent"], summary["acked"], summary["dropped"], summary["unacked"]) == (300, 0, 250, 50)
    assert "250 dropped (250 readings) because the buffer (--buffer 50) was full" in stderr
    assert "50 (50 readings) not acknowledged by the broker within --drain-timeout 1 s" in stderr


def test_ctrl_c_stops_generation_drains_and_prints_the_summary(stack_config: Path, stack_settings: Settings) -> None:
    collector = Collector(stack_settings.mqtt, "sensors/+/data").start()
    process = _simulate(stack_config, "--sensors", "5", "--rate", "200", "--qos", "1")
    try:
        deadline = time.monotonic() + 30
        while len(collector.messages) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        code, summary, _ = _finish(process)
        collector.wait_for(summary["acked"])
    finally:
        collector.stop()
    assert code == 0
    assert summary["sent"] >= 50
    assert summary["acked"] == summary["sent"]
    assert (summary["dropped"], summary["unacked"]) == (0, 0)
    assert sorted(r["seq"] for r in collector.readings()) == list(range(summary["sent"]))


def test_options_that_cannot_work_together_are_one_clear_line(stack_config: Path) -> None:
    result = sensorpipe("simulate", "--legacy", "--batch", "5", config=stack_config)
    assert result.returncode == 1
    assert "--legacy sends the original single-reading payload: drop --batch, or drop --legacy" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_publish_into_a_connection_that_just_broke_goes_back_to_the_buffer(private_broker: PrivateBroker) -> None:
    """A broker killed between two publishes: the next write fails (paho's CONN_LOST), not only the next read."""
    private_broker.start()
    collector = Collector(private_broker.settings.mqtt, "sensors/+/data", persistent=True).start()
    lines: list[str] = []
    broken = False

    def break_the_socket_once() -> bool:
        nonlocal broken
        box = publisher.outbox  # break it only when the loop's next step is a publish
        client = publisher.client
        if not broken and client and publisher.connected and box.acked >= 100 and box.queue and len(box.pending) < 100:
            sock = client.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_WR)  # the next publish writes into a closed socket
            broken = True
        return False

    publisher = Publisher(
        Job(FleetSpec(sensors=2), count=3000, qos=1),
        0,
        private_broker.settings.mqtt,
        should_stop=break_the_socket_once,
        report=lambda _stats: None,
        log=lines.append,
    )
    try:
        stats = publisher.run()
        collector.wait_for(3000)
    finally:
        collector.stop()
    assert broken
    assert (stats.acked, stats.reconnects) == (3000, 1), lines
    assert any("connection lost" in line and "back in the buffer" in line for line in lines), lines
