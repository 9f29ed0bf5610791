"""`sensorpipe stack check`'s checks: a real round trip through every service, the proof that the stack works.

Each round trip writes something unique, reads it back through the service, and cleans up after itself;
it returns what it carried or raises a `SensorpipeError` that says where it stopped. `roundtrip_checks`
makes them checks for the runner doctor's checks run on: all at the same time, each with a timeout.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sensorpipe.clients.kafka_client import client_config, spark_kafka_options
from sensorpipe.clients.mqtt_client import connect, make_client
from sensorpipe.clients.topics import create_missing
from sensorpipe.config import Settings
from sensorpipe.config.credentials import CHECK_USER
from sensorpipe.config.logins import mqtt_login
from sensorpipe.doctor.check import Check, CheckSpec, passed
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.s3 import explain, s3_client

ROUNDTRIP_TOPIC = "sensorpipe-roundtrip"
TIMEOUT_S = 60.0
"""A round trip takes a second or so; past this, longer than its clients' own waits on a broken service
add up to in most cases (Kafka's: 15 s + 10 s + 10 s), it is reported as hanging instead of waited on."""
SPARK_TIMEOUT_S = 300.0
"""Spark's round trip starts a JVM and a session first: a minute or more on a busy machine."""


class RoundTripError(SensorpipeError):
    """A round trip did not come back; the message says where it stopped."""


def mqtt_roundtrip(settings: Settings) -> str:
    """Subscribe at QoS 1, publish at QoS 1, wait for the PUBACK and for delivery.

    On a secure home this is the login of `stack check`, allowed on `sensorpipe/roundtrip/#` only.
    """
    mqtt = mqtt_login(settings, CHECK_USER)
    topic = f"sensorpipe/roundtrip/{uuid.uuid4().hex}"
    payload = uuid.uuid4().bytes
    received = threading.Event()
    subscriber = make_client(mqtt, f"sensorpipe-rt-sub-{uuid.uuid4().hex[:8]}")
    publisher = make_client(mqtt, f"sensorpipe-rt-pub-{uuid.uuid4().hex[:8]}")
    subscriber.on_message = lambda _c, _u, message: received.set() if message.payload == payload else None
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    connect(subscriber, mqtt.host, mqtt.port)
    connect(publisher, mqtt.host, mqtt.port)
    subscriber.loop_start()
    publisher.loop_start()
    try:
        subscriber.subscribe(topic, qos=1)
        if not subscribed.wait(5):
            raise RoundTripError(f"MQTT broker at {mqtt.host}:{mqtt.port} did not acknowledge SUBSCRIBE")
        info = publisher.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=5)
        if not info.is_published():
            raise RoundTripError(f"MQTT broker at {mqtt.host}:{mqtt.port} sent no PUBACK for a QoS 1 message")
        if not received.wait(5):
            raise RoundTripError(
                f"MQTT broker at {mqtt.host}:{mqtt.port} did not deliver the message to the subscriber"
            )
    finally:
        for client in (publisher, subscriber):
            client.disconnect()
            client.loop_stop()
    return f"QoS 1 publish → subscribe on {mqtt.url}"


def _produce_one(settings: Settings, value: bytes) -> int:
    """Produce with acks=all to the round-trip topic; the record's offset once Kafka confirmed it."""
    kafka = settings.kafka
    create_missing(AdminClient(client_config(kafka)), kafka, [NewTopic(ROUNDTRIP_TOPIC, 1, 1)])
    delivered: dict[str, Any] = {}
    producer = Producer(client_config(kafka, acks="all", **{"enable.idempotence": True}))
    producer.produce(ROUNDTRIP_TOPIC, value=value, on_delivery=lambda err, msg: delivered.update(err=err, msg=msg))
    producer.flush(10)
    if delivered.get("err") is not None or "msg" not in delivered:
        raise RoundTripError(f"Kafka at {kafka.bootstrap_servers} did not confirm the record: {delivered.get('err')}")
    offset: int = delivered["msg"].offset()
    return offset


def kafka_roundtrip(settings: Settings) -> str:
    """Produce with acks=all to a small topic of our own, then consume that very record."""
    kafka = settings.kafka
    value = uuid.uuid4().bytes
    offset = _produce_one(settings, value)
    consumer = Consumer(
        client_config(kafka, **{"group.id": f"sensorpipe-rt-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    )
    consumer.assign([TopicPartition(ROUNDTRIP_TOPIC, 0, offset)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None and message.value() == value:
                return f"produce (acks=all) → consume at offset {offset} on {kafka.bootstrap_servers}"
    finally:
        consumer.close()
    raise RoundTripError(f"Kafka at {kafka.bootstrap_servers} did not return the record at offset {offset}")


def spark_roundtrip(settings: Settings) -> str:
    """Kafka → Spark (pinned connector) → Parquet in the lake (S3A or local) → read back: problems 1 and 5."""
    from pyspark.sql.functions import col

    from sensorpipe.stream.session import build_session

    marker = uuid.uuid4().hex
    offset = _produce_one(settings, marker.encode())
    target = f"{settings.lake_uri}_roundtrip/{marker}"
    spark = build_session(settings, "sensorpipe-roundtrip")
    try:
        records = (
            spark.read.format("kafka")
            .options(**spark_kafka_options(settings.kafka))
            .option("subscribe", ROUNDTRIP_TOPIC)
            .option("startingOffsets", json.dumps({ROUNDTRIP_TOPIC: {"0": offset}}))
            .option("endingOffsets", json.dumps({ROUNDTRIP_TOPIC: {"0": offset + 1}}))
            .load()
        )
        records.selectExpr("CAST(value AS STRING) AS value", "offset").write.parquet(target)
        found = spark.read.parquet(target).where(col("value") == marker).count()
    except Exception as e:
        raise RoundTripError(f"Spark could not carry a record from Kafka to {target}: {str(e).splitlines()[0]}") from e
    finally:
        spark.stop()
        _remove_lake_prefix(settings, f"_roundtrip/{marker}")
    if found != 1:
        raise RoundTripError(f"Spark wrote {target} but reading it back found {found} rows, not 1")
    return f"Kafka → Spark → {target} Parquet → read back: 1 row"


def _remove_lake_prefix(settings: Settings, prefix: str) -> None:
    if settings.lake.backend == "local":
        shutil.rmtree(settings.lake_dir / prefix, ignore_errors=True)
        return
    client = s3_client(settings.s3)
    listed = client.list_objects_v2(Bucket=settings.s3.bucket, Prefix=prefix).get("Contents", [])
    for item in listed:
        client.delete_object(Bucket=settings.s3.bucket, Key=item["Key"])


def postgres_roundtrip(settings: Settings) -> str:
    """Create a temporary table, insert a row, select it back."""
    pg = settings.postgres
    marker = uuid.uuid4().hex
    try:
        with psycopg.connect(pg.dsn(), connect_timeout=5) as conn:
            conn.execute("create temporary table sensorpipe_roundtrip (id text primary key, at timestamptz)")
            conn.execute("insert into sensorpipe_roundtrip values (%s, now())", (marker,))
            row = conn.execute("select id from sensorpipe_roundtrip where id = %s", (marker,)).fetchone()
    except psycopg.OperationalError as e:
        raise RoundTripError(
            f"PostgreSQL at {pg.host}:{pg.port} refused {pg.user}: {str(e).strip()}: is `sensorpipe stack up` running?"
        ) from e
    if row is None or row[0] != marker:
        raise RoundTripError(f"PostgreSQL at {pg.host}:{pg.port} did not return the inserted row")
    return f"create/insert/select in {pg.database} as {pg.user}"


def s3_roundtrip(settings: Settings) -> str:
    """Put an object, get it, find it in a listing, delete it."""
    s3 = settings.s3
    client = s3_client(s3)
    key = f"_roundtrip/{uuid.uuid4().hex}.txt"
    body = uuid.uuid4().bytes
    try:
        client.put_object(Bucket=s3.bucket, Key=key, Body=body)
        got = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
        listed = [o["Key"] for o in client.list_objects_v2(Bucket=s3.bucket, Prefix="_roundtrip/").get("Contents", [])]
        client.delete_object(Bucket=s3.bucket, Key=key)
    except Exception as e:
        raise RoundTripError(str(explain(s3, e))) from e
    if got != body or key not in listed:
        raise RoundTripError(f"S3 at {s3.endpoint} did not return the object it stored")
    return f"put/get/list/delete in s3://{s3.bucket} at {s3.endpoint}"


def local_lake_roundtrip(settings: Settings) -> str:
    """Write a file into the local lake directory, read it back, remove it."""
    lake = settings.lake_dir
    probe = lake / f"_roundtrip-{uuid.uuid4().hex}.txt"
    body = uuid.uuid4().bytes
    try:
        probe.write_bytes(body)
        got = probe.read_bytes()
        probe.unlink()
    except OSError as e:
        raise RoundTripError(
            f"the local lake {lake} is not writable ({e}): run `sensorpipe stack up --lake local`"
        ) from e
    if got != body:
        raise RoundTripError(f"the local lake {lake} did not return the file it stored")
    return f"write/read/delete in {lake}"


def _round_trip(name: str, carry: Callable[[Settings], str], timeout_s: float = TIMEOUT_S) -> CheckSpec:
    """A round trip as a check: ✓ with what it carried, or ✗ with the one line that says where it stopped."""

    def run(settings: Settings) -> Check:
        try:
            return passed(name, carry(settings))
        except SensorpipeError as e:
            return Check(name, False, str(e))

    return CheckSpec(name, run, timeout_s=timeout_s)


def roundtrip_checks(settings: Settings, *, spark: bool = False) -> list[CheckSpec]:
    """The round trips that fit the configured lake backend; Spark's only on request (it starts a JVM)."""
    checks = [
        _round_trip("mqtt", mqtt_roundtrip),
        _round_trip("kafka", kafka_roundtrip),
        _round_trip("postgres", postgres_roundtrip),
        _round_trip("s3", s3_roundtrip) if settings.lake.backend == "s3" else _round_trip("lake", local_lake_roundtrip),
    ]
    if spark:
        checks.append(_round_trip("spark", spark_roundtrip, SPARK_TIMEOUT_S))
    return checks


__all__ = ["RoundTripError", "roundtrip_checks"]
