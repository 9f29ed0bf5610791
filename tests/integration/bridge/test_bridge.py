"""`sensorpipe bridge` against the real Mosquitto and Kafka: byte for byte, keyed, and nothing acknowledged lost."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from sensorpipe.bridge.forwarder import MAX_RECORD_BYTES
from sensorpipe.clients.kafka_client import client_config
from sensorpipe.config import Settings
from sensorpipe.contract.headers import HEADER_RECEIVED_AT, HEADER_TOPIC
from tests.ingest_support import BridgeProcess, Lane, Publisher, read_topic, restart_service, simulator

StartBridge = Callable[..., BridgeProcess]

pytestmark = pytest.mark.integration


def reading(sensor: str, seq: int) -> bytes:
    return json.dumps(
        {"sensor_id": sensor, "timestamp": 1_790_000_000 + seq / 1000, "temperature": 21.5, "seq": seq}
    ).encode()


def test_ten_thousand_readings_arrive_byte_identical_keyed_and_with_headers(
    start_bridge: StartBridge, stack_settings: Settings
) -> None:
    lane = Lane()
    bridge = start_bridge(lane)
    bridge.wait_subscribed()
    sensors = [f"sensor-{i:02d}" for i in range(8)]
    sent = {}
    publisher = Publisher(stack_settings)
    for seq in range(10_000):
        sensor = sensors[seq % len(sensors)]
        payload = reading(sensor, seq)
        sent[payload] = sensor
        publisher.publish(lane.mqtt_topic(sensor), payload)
    publisher.wait_acknowledged()
    publisher.close()

    records = read_topic(stack_settings, lane.kafka_topic, 10_000)
    assert len(records) == 10_000
    assert Counter(r.value for r in records) == Counter(sent.keys())
    for record in records:
        assert record.key == sent[record.value].encode()
        assert record.headers[HEADER_TOPIC] == lane.mqtt_topic(sent[record.value]).encode()
        assert int(record.headers[HEADER_RECEIVED_AT]) > 1_700_000_000_000
    by_key = {r.key: {x.partition for x in records if x.key == r.key} for r in records}
    assert all(len(partitions) == 1 for partitions in by_key.values()), "one sensor, one partition"

    assert "sensorpipe_bridge_forwarded_total 10000.0" in bridge.metrics()
    totals = bridge.stop()
    assert (totals["received"], totals["forwarded"], totals["acknowledged"]) == (10_000, 10_000, 10_000)
    assert totals["in_flight"] == 0


def test_a_bridge_started_against_empty_kafka_creates_its_topics(
    start_bridge: StartBridge, stack_settings: Settings
) -> None:
    lane = Lane()
    admin = AdminClient(client_config(stack_settings.kafka))
    assert lane.kafka_topic not in admin.list_topics(timeout=10).topics
    bridge = start_bridge(lane)
    bridge.wait_subscribed()
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[lane.kafka_topic].partitions) == stack_settings.kafka.partitions
    assert len(topics[lane.dlq_topic].partitions) == stack_settings.kafka.partitions
    assert f"created Kafka topic {lane.kafka_topic}" in bridge.log
    bridge.stop()


def test_malformed_payloads_are_forwarded_untouched_and_never_stop_the_bridge(
    start_bridge: StartBridge, stack_settings: Settings
) -> None:
    lane = Lane()
    bridge = start_bridge(lane)
    bridge.wait_subscribed()
    junk = [
        b"not json at all",
        b"\xff\xfe\x00\x01 invalid utf-8 \xc3\x28",
        b'{"temperature": "hot", "sensor_id": 7}',
        b'{"truncated": ',
        b"[1, 2, {",
        b'"eyJ0ZW1wZXJhdHVyZSI6IDIxLjV9"',
        b"\x00" * 300,
    ]
    oversized = b"x" * (MAX_RECORD_BYTES + 10)
    publisher = Publisher(stack_settings)
    for index, payload in enumerate(junk):
        publisher.publish(lane.mqtt_topic(f"junk-{index}"), payload)
    publisher.publish(lane.mqtt_topic("huge"), oversized)
    publisher.publish(lane.mqtt_topic("good"), reading("good", 1))
    publisher.wait_acknowledged()
    publisher.close()

    records = read_topic(stack_settings, lane.kafka_topic, len(junk) + 1)
    assert sorted(r.value for r in records) == sorted([*junk, reading("good", 1)])
    dead = read_topic(stack_settings, lane.dlq_topic, 1)
    assert len(dead) == 1
    letter = json.loads(dead[0].value)
    assert letter["reason"] == "payload_too_large"
    assert letter["mqtt_topic"] == lane.mqtt_topic("huge")
    assert str(len(oversized)) in letter["detail"]

    totals = bridge.stop()
    assert totals["received"] == len(junk) + 2
    assert totals["acknowledged"] == len(junk) + 2
    assert totals["dead_lettered"] == 1


def test_kill_9_mid_stream_loses_nothing_the_broker_acknowledged(
    start_bridge: StartBridge, stack_settings: Settings
) -> None:
    lane = Lane()
    total = 20_000
    bridge = start_bridge(lane)
    bridge.wait_subscribed()
    publisher = Publisher(stack_settings)
    for seq in range(total):
        if seq == total // 4:
            bridge.wait_forwarded(total // 8)
        if seq == total // 2:
            bridge.kill()  # SIGKILL: no drain, no goodbye; Mosquitto keeps the session's messages
        publisher.publish(lane.mqtt_topic(f"s{seq % 5}"), reading(f"s{seq % 5}", seq))
    publisher.wait_acknowledged()
    publisher.close()

    restarted = start_bridge(lane)
    restarted.wait_for_log("session resumed")
    records = read_topic(stack_settings, lane.kafka_topic, total, timeout_s=180)
    seqs = Counter(json.loads(r.value)["seq"] for r in records)
    missing = set(range(total)) - set(seqs)
    duplicates = sum(n - 1 for n in seqs.values())
    assert not missing, f"{len(missing)} acknowledged readings lost, e.g. {sorted(missing)[:10]}"
    # At-least-once window: only what Kafka confirmed but MQTT had not yet acknowledged can come twice.
    assert duplicates <= stack_settings.bridge.max_in_flight
    print(f"kill -9 of the bridge: {total} readings, 0 lost, {duplicates} duplicated")
    restarted.stop()


def test_two_bridges_in_one_share_group_split_the_load(start_bridge: StartBridge, stack_settings: Settings) -> None:
    lane = Lane()
    first = start_bridge(lane, "--share-group", lane.name, client_id="one")
    second = start_bridge(lane, "--share-group", lane.name, client_id="two")
    first.wait_subscribed()
    second.wait_subscribed()
    assert f"$share/{lane.name}/{lane.mqtt_filter}" in first.log
    total = 6_000
    publisher = Publisher(stack_settings)
    for seq in range(total):
        publisher.publish(lane.mqtt_topic(f"s{seq % 12}"), reading(f"s{seq % 12}", seq))
    publisher.wait_acknowledged()
    publisher.close()

    records = read_topic(stack_settings, lane.kafka_topic, total)
    assert sorted(json.loads(r.value)["seq"] for r in records) == list(range(total))
    one, two = first.stop(), second.stop()
    assert one["forwarded"] + two["forwarded"] == total
    assert one["forwarded"] > total // 10 and two["forwarded"] > total // 10, (one, two)


def test_a_taken_metrics_port_is_a_clear_error(start_bridge: StartBridge) -> None:
    lane = Lane()
    bridge = start_bridge(lane)
    bridge.wait_subscribed()
    other = start_bridge(lane, "--metrics-port", str(bridge.metrics_port), client_id="other")
    assert other.process.wait(30) == 1
    other._reader.join(5)
    assert f"metrics port {bridge.metrics_port} on 127.0.0.1 is not available" in other.log
    assert "set bridge.metrics_port to a free port" in other.log
    assert "Traceback" not in other.log
    bridge.stop()


def test_restarting_mosquitto_then_kafka_mid_stream_loses_nothing(
    start_bridge: StartBridge, stack_config: Path, stack_settings: Settings
) -> None:
    lane = Lane()
    bridge = start_bridge(lane)
    bridge.wait_subscribed()
    total = 24_000
    sim = simulator(stack_config, lane, "--sensors", "12", "--rate", "1500", "--count", str(total), "--qos", "1")
    try:
        bridge.wait_forwarded(3_000)
        before_restart = len(bridge.lines)
        restart_service(stack_settings, "mqtt")
        bridge.wait_for_log("connected to mqtt", after=before_restart)
        bridge.wait_forwarded(9_000)
        restart_service(stack_settings, "kafka")
        out, err = sim.communicate(timeout=300)
    finally:
        if sim.poll() is None:
            sim.kill()
    summary = json.loads(out)
    assert summary["dropped"] == 0 and summary["acked"] == summary["sent"] == total, err

    records = read_topic(stack_settings, lane.kafka_topic, total, timeout_s=180)
    seqs = Counter(json.loads(r.value)["seq"] for r in records)
    missing = set(range(total)) - set(seqs)
    assert not missing, f"{len(missing)} acknowledged readings lost, e.g. {sorted(missing)[:10]}"
    assert "session resumed" in bridge.log
    print(f"Mosquitto and Kafka restarts: {total} readings, 0 lost, {sum(seqs.values()) - len(seqs)} duplicated")
    bridge.stop()


def test_a_bridge_without_brokers_says_what_is_wrong_and_keeps_trying(start_bridge: StartBridge) -> None:
    lane = Lane()
    no_kafka = start_bridge(lane, sets=("kafka.bootstrap_servers=127.0.0.1:1",))
    no_kafka.wait_for_log("Kafka at 127.0.0.1:1 did not answer")
    retries = no_kafka.wait_for_log("retrying in")
    no_kafka.wait_for_log("retrying in", after=retries + 1)
    assert no_kafka.process.poll() is None, "the bridge must wait for Kafka, not exit"
    assert no_kafka.stop()["received"] == 0

    no_mqtt = start_bridge(lane, sets=("mqtt.port=1",))
    no_mqtt.wait_for_log("MQTT broker at 127.0.0.1:1 refused the connection: is `sensorpipe stack up` running?")
    retries = no_mqtt.wait_for_log("retrying in")
    no_mqtt.wait_for_log("retrying in", after=retries + 1)
    assert "Traceback" not in no_mqtt.log
    assert no_mqtt.stop()["received"] == 0
