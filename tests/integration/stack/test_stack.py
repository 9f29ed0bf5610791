"""The local stack from nothing: real services, real clients, and the CLI a user types."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sensorpipe.clients.kafka_client import client_config
from sensorpipe.clients.mqtt_client import connect, make_client
from sensorpipe.config import S3Settings, Settings, load_settings
from sensorpipe.stack import Stack
from sensorpipe.stack.postgres import timescaledb_library
from sensorpipe.stack.process import group_members, stat_fields
from sensorpipe.storage.s3 import S3Error, list_buckets, s3_client
from tests.support import STACK_BASES, TEST_PORTS, fresh_home, listening_addresses, ports_from, sensorpipe, write_config

pytestmark = pytest.mark.integration


def _status(config: Path) -> dict[str, dict[str, object]]:
    result = sensorpipe("stack", "status", "--json", config=config)
    assert result.returncode == 0, result.stdout + result.stderr
    status: dict[str, dict[str, object]] = json.loads(result.stdout)
    return status


def test_status_json_matches_the_contract(stack_config: Path, stack_settings: Settings) -> None:
    result = sensorpipe("stack", "status", "--json", config=stack_config)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["healthy"] is True
    assert status["mqtt"]["url"] == f"mqtt://127.0.0.1:{TEST_PORTS['mqtt']}"
    assert status["kafka"]["bootstrap"] == f"127.0.0.1:{TEST_PORTS['kafka']}"
    assert status["postgres"]["dsn"] == f"postgresql://sensor_user:***@127.0.0.1:{TEST_PORTS['postgres']}/sensordb"
    assert status["s3"]["endpoint"] == f"http://127.0.0.1:{TEST_PORTS['s3']}"
    assert status["lake"]["uri"] == "s3a://sensordata/"
    for service in ("mqtt", "kafka", "postgres", "s3", "lake"):
        assert status[service]["healthy"] is True, status[service]
    assert stack_settings.postgres.password.get_secret_value() not in result.stdout


def test_mqtt_publish_subscribe_at_qos1(stack_settings: Settings) -> None:
    settings = stack_settings.mqtt
    topic = f"sensors/{uuid.uuid4().hex}/data"
    received: list[bytes] = []
    arrived = threading.Event()
    subscriber = make_client(settings, "test-sub")
    publisher = make_client(settings, "test-pub")

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        received.append(bytes(message.payload))
        if len(received) == 10:
            arrived.set()

    subscriber.on_message = on_message
    connect(subscriber, settings.host, settings.port)
    connect(publisher, settings.host, settings.port)
    subscriber.loop_start()
    publisher.loop_start()
    try:
        subscriber.subscribe(topic, qos=1)
        time.sleep(0.3)
        infos = [publisher.publish(topic, f'{{"n": {n}}}', qos=1) for n in range(10)]
        for info in infos:
            info.wait_for_publish(timeout=5)
        assert all(info.is_published() for info in infos)
        assert arrived.wait(5)
    finally:
        for client in (subscriber, publisher):
            client.disconnect()
            client.loop_stop()
    assert sorted(received) == sorted(f'{{"n": {n}}}'.encode() for n in range(10))


def test_kafka_produce_and_consume(stack_settings: Settings) -> None:
    kafka = stack_settings.kafka
    topic = f"test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(client_config(kafka))
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=15)
    producer = Producer(client_config(kafka, acks="all"))
    for n in range(20):
        producer.produce(topic, key=f"sensor-{n % 4}", value=f"reading-{n}")
    assert producer.flush(15) == 0
    consumer = Consumer(client_config(kafka, **{"group.id": topic, "auto.offset.reset": "earliest"}))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(2)])
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(values) < 20 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        value = message.value() if message is not None and message.error() is None else None
        if value is not None:
            values.append(value)
    consumer.close()
    assert sorted(values) == sorted(f"reading-{n}".encode() for n in range(20))


def test_kafka_does_not_create_topics_on_demand(stack_settings: Settings) -> None:
    """auto.create.topics.enable=false: a typo in a topic name must not silently create a topic."""
    producer = Producer(client_config(stack_settings.kafka, **{"message.timeout.ms": 3000}))
    errors: list[object] = []
    producer.produce("no-such-topic-typo", value=b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    metadata = AdminClient(client_config(stack_settings.kafka)).list_topics(timeout=5)
    assert "no-such-topic-typo" not in metadata.topics


def test_postgres_create_insert_select(stack_settings: Settings) -> None:
    pg = stack_settings.postgres
    assert pg.database == "sensordb"
    assert pg.user == "sensor_user"
    with psycopg.connect(pg.dsn()) as conn:
        conn.execute("create table if not exists stack_test (sensor_id text, value double precision)")
        conn.execute("insert into stack_test values ('a', 1.5), ('b', 2.5)")
        rows = conn.execute("select sensor_id, value from stack_test order by sensor_id").fetchall()
        conn.execute("drop table stack_test")
    assert rows == [("a", 1.5), ("b", 2.5)]


def test_postgres_refuses_a_wrong_password(stack_settings: Settings) -> None:
    pg = stack_settings.postgres
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=pg.host, port=pg.port, user=pg.user, password="wrong", dbname=pg.database)


def test_s3_put_get_list(stack_settings: Settings) -> None:
    s3 = stack_settings.s3
    client = s3_client(s3)
    assert s3.bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
    prefix = f"test/{uuid.uuid4().hex}/"
    for n in range(3):
        client.put_object(Bucket=s3.bucket, Key=f"{prefix}{n}.json", Body=f'{{"n": {n}}}'.encode())
    listed = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix)["Contents"])
    assert listed == [f"{prefix}{n}.json" for n in range(3)]
    assert client.get_object(Bucket=s3.bucket, Key=f"{prefix}1.json")["Body"].read() == b'{"n": 1}'


def test_s3_refuses_wrong_keys(stack_settings: Settings) -> None:
    wrong = S3Settings.model_validate({**stack_settings.s3.model_dump(), "secret_key": "not-the-secret"})
    with pytest.raises(S3Error, match="refused the keys"):
        list_buckets(wrong)


@pytest.mark.spark
def test_stack_check_round_trips_every_service_and_spark(stack_config: Path) -> None:
    """The README's main command ends with this: each service, then Kafka → Spark → S3A Parquet → back."""
    result = sensorpipe("stack", "check", "--spark", "--json", config=stack_config)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["service"] for c in report["checks"]] == ["mqtt", "kafka", "postgres", "s3", "spark"]
    assert all(c["ok"] for c in report["checks"]), report
    assert "read back: 1 row" in report["checks"][-1]["detail"]


def test_stack_check_names_the_service_that_is_down(stack_config: Path) -> None:
    """Pointed at a port where no broker listens, the summary says which service failed and what to do."""
    result = sensorpipe("--set", "mqtt.port=1", "stack", "check", config=stack_config)
    assert result.returncode == 1
    assert "✗ mqtt" in result.stdout
    assert "refused the connection: is `sensorpipe stack up` running?" in result.stdout
    assert "✓ postgres" in result.stdout


def test_up_twice_is_harmless(stack_config: Path) -> None:
    before = _status(stack_config)
    result = sensorpipe("stack", "up", config=stack_config)
    assert result.returncode == 0, result.stdout + result.stderr
    for service in ("postgres", "mqtt", "kafka", "s3"):
        assert f"{service}: already running" in result.stdout
    after = _status(stack_config)
    for service in ("postgres", "mqtt", "kafka", "s3"):
        assert after[service]["pid"] == before[service]["pid"]


def test_every_service_listens_on_loopback_only(stack_config: Path) -> None:
    status = _status(stack_config)
    pids: set[int] = set()
    for service in ("postgres", "mqtt", "kafka", "s3"):
        pid = status[service]["pid"]
        assert isinstance(pid, int)
        pids.update(group_members(pid) or [pid])
    sockets = listening_addresses(pids)
    assert {port for _pid, _addr, port in sockets} >= {
        TEST_PORTS["mqtt"],
        TEST_PORTS["kafka"],
        TEST_PORTS["postgres"],
        TEST_PORTS["s3"],
    }
    exposed = [(pid, addr, port) for pid, addr, port in sockets if addr not in {"127.0.0.1", "::ffff:127.0.0.1"}]
    assert exposed == []


def test_taken_port_is_a_clear_error_not_a_hang() -> None:
    home = fresh_home("sensorpipe-taken-")
    ports = ports_from(STACK_BASES["stack_taken"])
    config = write_config(home, ports)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", ports["kafka"]))
        squatter.listen()
        result = sensorpipe("stack", "up", config=config, timeout_s=60)
    try:
        assert result.returncode == 1
        assert (
            f"kafka: port {ports['kafka']} (broker) on 127.0.0.1 is already taken by pid {os.getpid()}" in result.stderr
        )
        assert "Traceback" not in result.stderr
        assert not list((home / "run").glob("*.pid")) if (home / "run").exists() else True
    finally:
        Stack(load_settings(config_file=config)).down(purge=True)
        shutil.rmtree(home, ignore_errors=True)


def test_down_stops_exactly_our_processes_and_keeps_data() -> None:
    """A second, small stack (lake in a directory): down, restart on the same data, purge."""
    home = fresh_home("sensorpipe-down-")
    ports = ports_from(STACK_BASES["stack_restart"])
    config = write_config(home, ports, lake="local")
    bystander = __import__("subprocess").Popen(["sleep", "300"])
    try:
        up = sensorpipe("stack", "up", config=config)
        assert up.returncode == 0, up.stdout + up.stderr
        preloaded = [line for line in up.stdout.splitlines() if "TimescaleDB preloaded" in line]
        assert len(preloaded) == (1 if timescaledb_library() else 0), up.stdout
        status = _status(config)
        assert "s3" not in status
        assert status["lake"]["uri"] == (home / "lake").as_uri()
        settings = load_settings(config_file=config)
        with psycopg.connect(settings.postgres.dsn()) as conn:
            conn.execute("create table kept (n int)")
            conn.execute("insert into kept values (42)")
        pids: set[int] = set()
        for service in ("postgres", "mqtt", "kafka"):
            pid = status[service]["pid"]
            assert isinstance(pid, int)
            pids.update(group_members(pid))
        assert len(pids) >= 3

        down = sensorpipe("stack", "down", config=config)
        assert down.returncode == 0, down.stderr
        alive = [pid for pid in pids if (fields := stat_fields(pid)) is not None and fields[0] != "Z"]
        assert alive == []
        assert bystander.poll() is None  # not ours: untouched
        assert (home / "postgres" / "data" / "PG_VERSION").exists()

        again = sensorpipe("stack", "up", config=config)
        assert again.returncode == 0, again.stdout + again.stderr
        with psycopg.connect(settings.postgres.dsn()) as conn:
            assert conn.execute("select n from kept").fetchall() == [(42,)]

        purge = sensorpipe("stack", "down", "--purge", config=config)
        assert purge.returncode == 0, purge.stderr
        assert not home.exists()
    finally:
        bystander.send_signal(signal.SIGTERM)
        bystander.wait()
        Stack(load_settings(config_file=config)).down() if home.exists() else None
        shutil.rmtree(home, ignore_errors=True)


def test_a_service_that_cannot_start_is_named_with_its_cause() -> None:
    home = fresh_home("sensorpipe-broken-")
    config = write_config(home, ports_from(STACK_BASES["stack_local"]), lake="local")
    try:
        result = sensorpipe("--set", "stack.kafka_heap=lots", "stack", "up", config=config, timeout_s=120)
        assert result.returncode == 1
        assert "kafka:" in result.stderr
        assert "Invalid maximum heap size: -Xmxlots" in result.stderr
        assert "Traceback" not in result.stderr
        assert list((home / "run").glob("*.pid")) == []  # what this `up` started, it stopped again
    finally:
        Stack(load_settings(config_file=config)).down(purge=True)
        shutil.rmtree(home, ignore_errors=True)
