"""Stage ceilings for `sensorpipe bench`: each stage of the pipeline ALONE, on this machine, with real readings.

docs/design.md holds the end-to-end rate against these figures measured in the same run, so a slow run on a
busy machine is judged against that machine, not against a number from another day. Every stage uses
the simulator's own readings (`simulator.readings.Fleet`, 100 sensors) and the clients the pipeline uses,
and every rate is in readings per second (messages x readings per message). Nothing measured here
touches the pipeline's data: each stage works on a throwaway topic, table or prefix and removes it.

- `mqtt` (per batch size): plain paho publish → subscribe at QoS 1 through the configured broker, built
  with `clients.mqtt_client` (same credentials as the bridge). The publisher keeps an in-flight window of
  100 (an unbounded window collapses QoS 1, docs/design.md); the subscriber runs in a spawned process so the
  two do not share a GIL. Rate: messages received after the first / (last receive - first receive).
  Topics are `sensorpipe-bench-<hex>/<sender>/data`, outside the bridge's `mqtt.topic` (checked), so a
  running bridge never forwards them. Payloads are built before the clock starts and cycled, so the
  figure is the broker path, not payload generation.
- `kafka_produce` (per batch size): one record per MQTT message, keyed and with headers as the bridge
  sends them, through a producer configured as the bridge's (acks=all, idempotence, `bridge.linger_ms`),
  as fast as librdkafka takes them for `duration_s`, into a throwaway topic `sensorpipe-bench-<hex>`
  with `kafka.partitions` partitions. Rate: acknowledged records / (last acknowledgement - start).
- `kafka_consume` (per batch size): those records read back from the beginning by a consumer with a
  fresh group id, assigned every partition (no group join to wait for), in batches of up to 10,000.
  Rate: records after the first batch / (last batch - first batch). The topic is deleted afterwards.
- `postgres_copy`: the storage writer's binary COPY (`storage.writer.copy_rows`, as the writer role)
  into a temporary table `(like sensor_data including all)`, so with sensor_data's key, indexes and
  checks, in batches of 50,000 readings shaped as the stream job hands them over. Each batch is its
  own transaction, as in the writer; the table is emptied between batches (not timed) so every batch
  meets the same table. Rate: rows / time spent in COPY and commit.
- `parquet_write`: pyarrow writes of the same readings in the lake's `raw` layout (the stream job's
  columns, Hive partitions by UTC date and hour, snappy as Spark writes them) to the configured lake
  (S3 or a local directory, through the lake's writer `storage.lake.write_partitioned`) under `_bench/<hex>/`, 50,000
  rows a write. Rate: rows / time spent writing. The prefix is deleted afterwards.

The database and lake stages do not depend on the message size and are measured once (`batch=None`).
Each stage runs for about `duration_s` of measured time; preparing data and cleaning up come on top.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import queue
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import Message as KafkaMessage
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql

from sensorpipe.bench.accounting import epoch_ms
from sensorpipe.bench.report import MQTT_STAGE, Ceiling
from sensorpipe.bridge.forwarder import Headers, producer_config
from sensorpipe.clients.kafka_client import KafkaError, client_config, cluster_metadata
from sensorpipe.clients.mqtt_client import connect, make_client
from sensorpipe.clients.topics import create_missing
from sensorpipe.config import MqttSettings, Settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.contract.headers import HEADER_RECEIVED_AT, HEADER_TOPIC
from sensorpipe.contract.identity import SensorKeys
from sensorpipe.errors import SensorpipeError
from sensorpipe.simulator.readings import Fleet, FleetSpec, Message
from sensorpipe.storage.errors import connected
from sensorpipe.storage.lake import (
    dataset_path,
    with_partition_columns,
    write_partitioned,
)
from sensorpipe.storage.s3 import delete_prefix, s3_client
from sensorpipe.storage.writer import READING_TYPES, RawJsonb, Row, copy_rows, explain

__all__ = [
    "BENCH_PREFIX",
    "KAFKA_CONSUME_STAGE",
    "KAFKA_PRODUCE_STAGE",
    "PARQUET_STAGE",
    "POSTGRES_STAGE",
    "CeilingError",
    "MqttCeiling",
    "bench_messages",
    "child_result",
    "database_rows",
    "lake_table",
    "measure",
    "mqtt_ceiling",
    "publish",
    "readings_per_s",
    "subscribe",
]

KAFKA_PRODUCE_STAGE = "kafka_produce"
KAFKA_CONSUME_STAGE = "kafka_consume"
POSTGRES_STAGE = "postgres_copy"
PARQUET_STAGE = "parquet_write"

BENCH_PREFIX = "sensorpipe-bench-"
"""MQTT topics and Kafka topics of a bench run start with this and a random hex part."""
LAKE_PREFIX = "_bench"
"""Lake directory of the Parquet ceiling: beside `raw/` and `agg_1m/`, which no reader of the lake lists."""
WINDOW = 100
"""QoS 1 messages in flight per publisher: the measured sweet spot of docs/design.md."""
SENSORS = 100
POOL_MESSAGES = 1_000
"""Distinct messages built before a publisher or producer starts, then cycled."""
ROWS_PER_BATCH = 50_000
CONSUME_BATCH = 10_000
IDLE_S = 3.0
"""A subscriber that saw no message for this long after the first has seen them all."""
START_TIMEOUT_S = 60.0


class CeilingError(SensorpipeError):
    """A ceiling could not be measured; the message names the cause and what to do."""


def readings_per_s(events: int, seconds: float, batch: int = 1) -> float:
    """`events` messages, records or rows in `seconds`, as readings per second.

    Refuses what would be a meaningless figure (nothing counted, no time elapsed): a ceiling of zero or
    infinity would make every target "met" or "missed" for the wrong reason.
    """
    if events <= 0:
        raise CeilingError(f"nothing was counted in {seconds:.2f} s: no rate can be measured; raise duration_s")
    if not (math.isfinite(seconds) and seconds > 0):
        raise CeilingError(f"{events} counted in {seconds} s: not a usable interval; raise duration_s")
    return events * batch / seconds


def bench_topic_pattern(hex_id: str) -> str:
    """The MQTT topics of one bench run, with the + level the simulator fills with a sensor or gateway id."""
    return f"{BENCH_PREFIX}{hex_id}/+/data"


def bench_messages(topic: str, batch: int, count: int = POOL_MESSAGES, seed: int = 0) -> list[Message]:
    """`count` valid messages of `batch` readings each, as the simulator publishes them on `topic` (with a +)."""
    fleet = Fleet(FleetSpec(sensors=SENSORS, seed=seed, batch=batch, topic=topic))
    now = time.time()
    return [fleet.next_message(now) for _ in range(count)]


def database_rows(count: int, partitions: int = 1, seed: int = 0) -> list[Row]:
    """`count` readings of the simulator in READING_COLUMNS order, as the stream job hands them to the writer.

    `raw_data` is the reading re-serialised with sorted keys (what the stream job stores); the Kafka
    partition and offset are made up but plausible.
    """
    fleet = Fleet(FleetSpec(sensors=SENSORS, seed=seed, batch=count if count > 1 else 2))
    objects: list[dict[str, Any]] = json.loads(fleet.next_message(time.time(), size=count).payload)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [
        (
            epoch + timedelta(milliseconds=epoch_ms(float(o["timestamp"]))),
            o["sensor_id"],
            float(o["temperature"]),
            float(o["humidity"]),
            json.dumps(o, sort_keys=True, separators=(",", ":")),
            "payload",
            i % partitions,
            i // partitions,
        )
        for i, o in enumerate(objects)
    ]


def lake_table(rows: Sequence[Row]) -> pa.Table:
    """Readings as the stream job writes them to the lake's `raw`: its columns, sensor metadata, date and hour."""
    from sensorpipe.stream.enrichment import METADATA_COLUMNS  # imports pyspark: only when the lake is measured

    types = [pa.timestamp("us", tz="UTC"), pa.string(), pa.float64(), pa.float64(), pa.string(), pa.string()]
    types += [pa.int32(), pa.int64()]
    columns = list(zip(*rows, strict=True))
    arrays = {name: pa.array(columns[i], types[i]) for i, name in enumerate(READING_COLUMNS)}
    arrays |= {name: pa.nulls(len(rows), pa.string()) for name in METADATA_COLUMNS if name != "sensor_id"}
    return with_partition_columns(pa.table(arrays), "time")


# -- MQTT --------------------------------------------------------------------------------------------


def _report(done: Any, work: Callable[[], object]) -> None:
    """Run `work` in a child process and put its result, or its error, on `done` for the parent to raise."""
    try:
        done.put(work())
    except Exception as e:  # a child's traceback would be lost: the parent raises it instead
        done.put(e if isinstance(e, RuntimeError) else CeilingError(f"{type(e).__name__}: {e}"))


def publish(settings: MqttSettings, topic: str, duration_s: float, batch: int, done: Any) -> None:
    """As fast as QoS 1 with a window of 100 allows, for `duration_s`; puts the messages the broker acknowledged.

    `topic` has a + level (like the bridge's subscription) that the simulator fills with the sender's id.
    """
    _report(done, lambda: _publish(settings, topic, duration_s, batch))


def _publish(settings: MqttSettings, topic: str, duration_s: float, batch: int) -> int:
    messages = bench_messages(topic, batch)
    client = make_client(settings, f"{BENCH_PREFIX}pub-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(WINDOW * 10)
    connect(client, settings.host, settings.port, settings.keepalive_s)
    client.loop_start()
    infos = []
    began = time.monotonic()
    sent = 0
    while time.monotonic() - began < duration_s:
        message = messages[sent % len(messages)]
        info = client.publish(message.topic, message.payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            time.sleep(0.0005)
            continue
        infos.append(info)
        sent += 1
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()
    return sum(1 for info in infos if info.is_published())


def subscribe(
    settings: MqttSettings, topic_filter: str, ready: Any, done: Any, idle_s: float = IDLE_S, wait_s: float = 120.0
) -> None:
    """Counts messages until none arrived for `idle_s`; puts (count, first, last receive time in monotonic s).

    Gives up with a count of 0 when nothing arrived within `wait_s` of subscribing.
    """
    _report(done, lambda: _subscribe(settings, topic_filter, ready, idle_s, wait_s))


def _subscribe(
    settings: MqttSettings, topic_filter: str, ready: Any, idle_s: float, wait_s: float
) -> tuple[int, float, float]:
    times: list[float] = []
    client = make_client(settings, f"{BENCH_PREFIX}sub-{uuid.uuid4().hex[:6]}")
    connect(client, settings.host, settings.port, settings.keepalive_s)
    client.on_message = lambda _c, _u, _m: times.append(time.monotonic())
    client.on_subscribe = lambda *_a: ready.put(True)
    client.subscribe(topic_filter, qos=1)
    subscribed = time.monotonic()
    while times or time.monotonic() - subscribed < wait_s:
        if times and time.monotonic() - times[-1] >= idle_s:
            break
        client.loop(timeout=0.1)
    client.disconnect()
    return (len(times), times[0], times[-1]) if times else (0, 0.0, 0.0)


@dataclass(frozen=True)
class MqttCeiling:
    """One publish → subscribe run: messages acknowledged to the publisher, received, and the receive rate."""

    published: int
    received: int
    messages_per_s: float


def child_result(done: Any, timeout_s: float, what: str) -> Any:
    """The result `publish` or `subscribe` put on `done`, raising the error it reported there instead."""
    try:
        result = done.get(timeout=timeout_s)
    except queue.Empty:
        raise CeilingError(
            f"the {what} reported nothing within {timeout_s:.0f} s: is the MQTT broker overloaded?"
        ) from None
    if isinstance(result, BaseException):
        raise result
    return result


def _wait_subscribed(ready: Any, done: Any, timeout_s: float) -> None:
    """Until the subscriber's SUBACK; a subscriber that failed to connect reports at once, not after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with suppress(queue.Empty):
            ready.get(timeout=0.2)
            return
        with suppress(queue.Empty):
            failed = done.get_nowait()
            raise failed if isinstance(failed, BaseException) else CeilingError("the subscriber stopped early")
    raise CeilingError(f"the subscriber did not subscribe within {timeout_s:.0f} s: is the MQTT broker overloaded?")


def mqtt_ceiling(settings: MqttSettings, topic: str, duration_s: float, batch: int = 1) -> MqttCeiling:
    """Plain paho publish → subscribe at QoS 1 on `topic` (with a + level), each client in a spawned process."""
    ctx = mp.get_context("spawn")
    ready, sub_done, pub_done = ctx.Queue(), ctx.Queue(), ctx.Queue()
    subscriber = ctx.Process(target=subscribe, args=(settings, topic, ready, sub_done), daemon=True)
    subscriber.start()
    publisher = None
    try:
        _wait_subscribed(ready, sub_done, START_TIMEOUT_S)
        publisher = ctx.Process(target=publish, args=(settings, topic, duration_s, batch, pub_done), daemon=True)
        publisher.start()
        published: int = child_result(pub_done, duration_s + 120, "publisher")
        received, first, last = child_result(sub_done, duration_s + 120, "subscriber")
    finally:
        for process in (publisher, subscriber):
            if process is not None:
                process.join(5)
                if process.is_alive():
                    process.kill()
    if received < 2:
        raise CeilingError(f"the subscriber received {received} of {published} messages on {topic}: check the broker")
    return MqttCeiling(published, received, readings_per_s(received - 1, last - first))


def _check_outside_bridge(settings: Settings, topic: str) -> None:
    """A running bridge must never forward bench messages into the pipeline's readings."""
    sample = topic.replace("+", "sensor-001")
    subscriptions = [settings.mqtt.topic, *([settings.mqtt.legacy_topic] if settings.mqtt.legacy_topic else [])]
    for subscription in subscriptions:
        if mqtt.topic_matches_sub(subscription, sample):
            raise CeilingError(
                f"bench topic {sample} matches the bridge's subscription {subscription!r}: a running bridge would"
                f" forward bench messages into {settings.kafka.topic}; set mqtt.topic to something like sensors/+/data"
            )


# -- Kafka -------------------------------------------------------------------------------------------


def _admin(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings.kafka, log_level=0))


@contextmanager
def _throwaway_topic(settings: Settings, name: str) -> Iterator[None]:
    """A topic shaped like the readings topic for the duration of the block, deleted afterwards."""
    admin = _admin(settings)
    cluster_metadata(admin, settings.kafka, 5.0)  # unreachable: a KafkaError that says what to do
    kafka = settings.kafka
    create_missing(admin, kafka, [NewTopic(name, kafka.partitions, kafka.replication_factor)])
    try:
        yield
    finally:
        _delete_topic(admin, settings, name)


def _delete_topic(admin: AdminClient, settings: Settings, name: str, timeout_s: float = 30.0) -> None:
    """Delete `name` and wait until the metadata no longer lists it."""
    for future in admin.delete_topics([name], operation_timeout=timeout_s).values():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as e:
            if e.args[0].code() != RdKafkaError.UNKNOWN_TOPIC_OR_PART:
                raise KafkaError(
                    f"Kafka at {settings.kafka.bootstrap_servers} did not delete the bench topic {name}"
                    f" ({e.args[0].str()}): delete it with Kafka's tools"
                ) from e
    deadline = time.monotonic() + timeout_s
    while name in cluster_metadata(admin, settings.kafka, 5.0).topics and time.monotonic() < deadline:
        time.sleep(0.2)


def kafka_produce(
    settings: Settings, topic: str, subscription: str, messages: Sequence[Message], duration_s: float
) -> tuple[int, float]:
    """Produce `messages` (cycled) for `duration_s` as the bridge does; (records acknowledged, seconds to the last ack).

    Keys come from the MQTT topics as the bridge takes them from its `subscription`.
    """
    producer = Producer(producer_config(settings, f"{BENCH_PREFIX}producer"))
    keys = SensorKeys((subscription,), settings.readings.default_sensor_id)
    acked = failed = 0
    last_ack = 0.0
    errors: list[str] = []

    def delivered(error: RdKafkaError | None, _message: KafkaMessage) -> None:
        nonlocal acked, failed, last_ack
        if error is None:
            acked += 1
            last_ack = time.monotonic()
        else:
            failed += 1
            if len(errors) < 3:
                errors.append(error.str())

    began = time.monotonic()
    sent = 0
    while time.monotonic() - began < duration_s:
        message = messages[sent % len(messages)]
        now_ms = int(time.time() * 1000)
        headers: Headers = [(HEADER_TOPIC, message.topic.encode()), (HEADER_RECEIVED_AT, str(now_ms).encode())]
        try:
            producer.produce(
                topic,
                message.payload,
                keys.key(message.topic, message.payload),
                headers=headers,
                timestamp=now_ms,
                on_delivery=delivered,
            )
        except BufferError:
            producer.poll(0.01)  # librdkafka's queue is full: serve deliveries
            continue
        sent += 1
        if sent % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failed:
        raise CeilingError(
            f"Kafka at {settings.kafka.bootstrap_servers} did not acknowledge {remaining + failed} of {sent} bench"
            f" records ({'; '.join(errors) or 'no delivery report within 60 s'}): check the broker's log"
        )
    return acked, last_ack - began


def kafka_consume(settings: Settings, topic: str, expected: int, timeout_s: float = 120.0) -> tuple[int, float]:
    """Read `topic` from the beginning until `expected` records arrived; (records after the first batch, seconds)."""
    consumer = Consumer(
        client_config(
            settings.kafka,
            **{
                "group.id": f"{BENCH_PREFIX}{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            },
        )
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        received = first_batch = 0
        first = last = 0.0
        deadline = time.monotonic() + timeout_s
        while received < expected:
            if time.monotonic() > deadline:
                raise CeilingError(f"read {received} of {expected} records back from {topic} in {timeout_s:.0f} s")
            records = consumer.consume(CONSUME_BATCH, timeout=1.0)
            errors = [r.error() for r in records if r.error() is not None]
            if errors:
                raise KafkaError(f"reading {topic} back failed: {errors[0]}: check the broker's log")
            if not records:
                continue
            last = time.monotonic()
            if not received:
                first, first_batch = last, len(records)
            received += len(records)
    finally:
        consumer.close()
    return received - first_batch, last - first


# -- PostgreSQL and the lake -------------------------------------------------------------------------


def postgres_copy(settings: Settings, rows: Sequence[Row], duration_s: float) -> tuple[int, float]:
    """COPY `rows` again and again into a temp table like sensor_data for about `duration_s`; (rows, seconds)."""
    table = sql.Identifier(f"sensorpipe_bench_{uuid.uuid4().hex[:8]}")
    copied, spent = 0, 0.0
    try:
        with connected(settings.postgres, "writer") as conn:
            conn.adapters.register_dumper(None, RawJsonb)
            conn.execute(sql.SQL("create temp table {} (like sensor_data including all)").format(table))
            while spent < duration_s or not copied:
                began = time.perf_counter()
                with conn.transaction():
                    copy_rows(conn, table, READING_COLUMNS, READING_TYPES, rows)
                spent += time.perf_counter() - began
                copied += len(rows)
                conn.execute(sql.SQL("truncate {}").format(table))
    except psycopg.Error as e:  # the writer's wording: a missing sensor_data says "run `sensorpipe db migrate`"
        raise explain(settings.postgres, "writer", e) from e
    return copied, spent


def parquet_write(settings: Settings, table: pa.Table, prefix: str, duration_s: float) -> tuple[int, float]:
    """Write `table` again and again under `prefix` of the lake for about `duration_s`; (rows, seconds).

    Through the lake's own writer (`lake.write_partitioned`). The caller deletes `prefix` (`_delete_lake_prefix`).
    """
    root = dataset_path(settings, prefix)
    written, spent = 0, 0.0
    while spent < duration_s or not written:
        began = time.perf_counter()
        write_partitioned(settings, table, root)
        spent += time.perf_counter() - began
        written += table.num_rows
    return written, spent


def _delete_lake_prefix(settings: Settings, prefix: str) -> None:
    """Remove what the Parquet ceiling wrote, and `_bench/` itself once it is empty."""
    if settings.lake.backend == "local":
        shutil.rmtree(settings.lake_dir / prefix, ignore_errors=True)
        with suppress(OSError):
            (settings.lake_dir / LAKE_PREFIX).rmdir()
        return
    s3 = settings.s3
    delete_prefix(s3, s3.bucket, prefix)
    client = s3_client(s3)
    if not client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{LAKE_PREFIX}/", MaxKeys=1).get("Contents"):
        # SeaweedFS keeps an emptied directory listed until its own key is deleted (see s3.delete_prefix).
        client.delete_object(Bucket=s3.bucket, Key=f"{LAKE_PREFIX}/")


# -- all of them -------------------------------------------------------------------------------------


def measure(
    settings: Settings,
    batches: Sequence[int],
    duration_s: float,
    on_stage: Callable[[str], None] = lambda _line: None,
) -> list[Ceiling]:
    """Every stage's ceiling: mqtt, kafka_produce and kafka_consume per batch size, then postgres_copy, parquet_write.

    Raises the project's error of the service that failed (MqttError, KafkaError, StorageError, S3Error)
    or CeilingError, each naming the cause and the fix.
    """
    if not batches or any(b < 1 for b in batches):
        raise CeilingError(f"batch sizes must be at least 1, got {list(batches)}")
    if duration_s <= 0:
        raise CeilingError(f"duration_s must be positive, got {duration_s}")
    hex_id = uuid.uuid4().hex[:10]
    topic = bench_topic_pattern(hex_id)
    _check_outside_bridge(settings, topic)
    ceilings: list[Ceiling] = []
    for batch in batches:
        on_stage(f"mqtt publish → subscribe at QoS 1, batch {batch} …")
        mqtt_run = mqtt_ceiling(settings.mqtt, topic, duration_s, batch)
        ceilings.append(Ceiling(MQTT_STAGE, mqtt_run.messages_per_s * batch, batch))
        kafka_topic = f"{BENCH_PREFIX}{hex_id}-b{batch}"
        with _throwaway_topic(settings, kafka_topic):
            on_stage(f"kafka produce (acks=all, idempotent), batch {batch} …")
            messages = bench_messages(topic, batch)
            acked, seconds = kafka_produce(settings, kafka_topic, topic, messages, duration_s)
            ceilings.append(Ceiling(KAFKA_PRODUCE_STAGE, readings_per_s(acked, seconds, batch), batch))
            on_stage(f"kafka consume from the beginning, batch {batch} …")
            records, seconds = kafka_consume(settings, kafka_topic, acked)
            ceilings.append(Ceiling(KAFKA_CONSUME_STAGE, readings_per_s(records, seconds, batch), batch))
    rows = database_rows(ROWS_PER_BATCH, settings.kafka.partitions)
    on_stage(f"postgres COPY into a temp table like sensor_data, {ROWS_PER_BATCH:,} rows a batch …")
    copied, seconds = postgres_copy(settings, rows, duration_s)
    ceilings.append(Ceiling(POSTGRES_STAGE, readings_per_s(copied, seconds)))
    prefix = f"{LAKE_PREFIX}/{hex_id}"
    on_stage(f"parquet write to the {settings.lake.backend} lake under {prefix}/, {ROWS_PER_BATCH:,} rows a file …")
    try:
        written, seconds = parquet_write(settings, lake_table(rows), prefix, duration_s)
    finally:
        _delete_lake_prefix(settings, prefix)
    ceilings.append(Ceiling(PARQUET_STAGE, readings_per_s(written, seconds)))
    return ceilings
