"""`sensorpipe tail`: watch the messages on either end of the bridge as they arrive, disturbing nothing.

The successor of the original stack's `subscriber.py`. Both followers are guests: the MQTT one has a
clean, throw-away session under a unique client id (the bridge's persistent session is never taken
over), the Kafka one a unique group id, assigned partitions and no commits (no real consumer group
moves). Payloads are shown as they are: text when they are UTF-8, else base64; nothing is decoded
further, so a binary or malformed payload is shown, never a crash.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, Message, TopicPartition
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka.admin import AdminClient
from paho.mqtt.reasoncodes import ReasonCode

from sensorpipe.clients.backoff import Backoff
from sensorpipe.clients.kafka_client import KafkaError, client_config, cluster_metadata
from sensorpipe.clients.mqtt_client import MqttError, connect, make_client
from sensorpipe.clients.topics import pipeline_topics
from sensorpipe.config import KafkaSettings, MqttSettings

logger = logging.getLogger(__name__)

HUMAN_PAYLOAD_CHARS = 200
"""Human mode cuts payloads here (and says so); JSON mode never cuts."""
HUMAN_HEADER_CHARS = 60

Notify = Callable[[str], None]
"""Where a follower says what it is doing (subscribed, lost the broker, back): one line each."""

# -- records and how they render --------------------------------------------------------------------


def bytes_field(name: str, data: bytes | None) -> dict[str, str | None]:
    """`{name: text}` when `data` is UTF-8, else `{name_base64: ...}`: JSON that carries every byte exactly."""
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode("ascii")}


def _printable(text: str) -> str:
    """Control characters escaped (`\\n`, `\\x1b`), so a payload can neither break the line nor the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def human_bytes(data: bytes | None, limit: int = HUMAN_PAYLOAD_CHARS) -> str:
    """One terminal-safe string: the text, or a marker and base64; cut after `limit` characters, saying so."""
    if data is None:
        return "(none)"
    try:
        marker, shown = "", _printable(data.decode("utf-8"))
    except UnicodeDecodeError:
        marker, shown = "(binary, base64) ", base64.b64encode(data).decode("ascii")
    if len(shown) > limit:
        shown = f"{shown[:limit]}… (truncated, {len(data)} bytes in all: --json shows everything)"
    return marker + shown


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class MqttRecord:
    """One MQTT message as the broker delivered it to us."""

    received_at: datetime
    topic: str
    qos: int
    retain: bool
    payload: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "source": "mqtt",
            "received_at": _iso(self.received_at),
            "topic": self.topic,
            "qos": self.qos,
            "retain": self.retain,
            "size": len(self.payload),
            **bytes_field("payload", self.payload),
        }

    def to_line(self, limit: int = HUMAN_PAYLOAD_CHARS) -> str:
        clock = self.received_at.astimezone().strftime("%H:%M:%S.%f")[:-3]
        retained = " retained" if self.retain else ""
        return (
            f"{clock}  {_printable(self.topic)}  qos {self.qos}{retained}  {len(self.payload)} B  "
            f"{human_bytes(self.payload, limit)}"
        )


@dataclass(frozen=True)
class KafkaRecord:
    """One Kafka record with its coordinates; `payload` is None for a tombstone."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    payload: bytes | None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": "kafka",
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": _iso(self.timestamp) if self.timestamp else None,
            **bytes_field("key", self.key),
            "headers": [{"key": name, **bytes_field("value", value)} for name, value in self.headers],
            "size": len(self.payload or b""),
            **bytes_field("payload", self.payload),
        }

    def to_line(self, limit: int = HUMAN_PAYLOAD_CHARS) -> str:
        stamp = self.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if self.timestamp else "-"
        headers = "".join(
            f"  {_printable(name)}={human_bytes(value, HUMAN_HEADER_CHARS)}" for name, value in self.headers
        )
        return (
            f"{stamp}  {_printable(self.topic)}[{self.partition}]@{self.offset}  key={human_bytes(self.key, limit)}"
            f"{headers}  {len(self.payload or b'')} B  {human_bytes(self.payload, limit)}"
        )


TailRecord = MqttRecord | KafkaRecord

# -- MQTT ---------------------------------------------------------------------------------------------


def mqtt_subscriptions(settings: MqttSettings) -> list[str]:
    """The bridge's subscriptions: what `tail mqtt` watches unless told otherwise."""
    return [topic for topic in (settings.topic, settings.legacy_topic) if topic]


def follow_mqtt(settings: MqttSettings, topics: Sequence[str], notify: Notify) -> Generator[MqttRecord, None, None]:
    """Messages on `topics` as they arrive, forever; after a lost connection it reconnects with backoff.

    A first connection that fails raises MqttError: a watcher started against a stopped broker says so
    rather than wait in silence. Subscribing at QoS 2 makes the QoS shown the publisher's (a message is
    delivered at the lower of the two).
    """
    client_id = f"sensorpipe-tail-{uuid.uuid4().hex[:12]}"
    client = make_client(settings, client_id, clean_session=True)
    arrived: deque[MqttRecord] = deque()
    client.on_message = lambda _c, _u, message: arrived.append(
        MqttRecord(datetime.now(UTC), message.topic, message.qos, bool(message.retain), bytes(message.payload))
    )
    where = f"{settings.host}:{settings.port}"
    _subscribe(client, settings, topics)
    notify(f"subscribed to {', '.join(topics)} on {settings.url} (client id {client_id})")
    try:
        while True:
            rc = client.loop(timeout=0.5)
            while arrived:
                yield arrived.popleft()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                notify(
                    f"lost the MQTT broker at {where} ({mqtt.error_string(rc)}): reconnecting with backoff;"
                    " messages published meanwhile are not shown"
                )
                _resubscribe(client, settings, topics)
                notify(f"reconnected to {where}: subscribed again to {', '.join(topics)}")
    finally:
        client.disconnect()


def _subscribe(client: mqtt.Client, settings: MqttSettings, topics: Sequence[str], timeout_s: float = 5.0) -> None:
    """Connect and subscribe, returning once the broker granted every subscription."""
    where = f"{settings.host}:{settings.port}"
    connect(client, settings.host, settings.port, settings.keepalive_s)
    granted: dict[int, list[ReasonCode]] = {}
    client.on_subscribe = lambda _c, _u, mid, codes, _p: granted.__setitem__(mid, codes)
    try:
        result, mid = client.subscribe([(topic, 2) for topic in topics])
    except ValueError as e:
        client.disconnect()
        raise MqttError(
            f"not a valid MQTT topic filter among {', '.join(topics)}: + and # stand for whole levels, # only last"
        ) from e
    deadline = time.monotonic() + timeout_s
    while mid not in granted:
        if result != mqtt.MQTT_ERR_SUCCESS or time.monotonic() > deadline:
            client.disconnect()
            raise MqttError(f"MQTT broker at {where} did not acknowledge the subscription to {', '.join(topics)}")
        result = client.loop(timeout=0.05)
    refused = [topic for topic, code in zip(topics, granted[mid], strict=False) if code.is_failure]
    if refused:
        client.disconnect()
        raise MqttError(
            f"MQTT broker at {where} refused the subscription to {', '.join(refused)}: check its ACL for mqtt.username"
        )


def _resubscribe(client: mqtt.Client, settings: MqttSettings, topics: Sequence[str]) -> None:
    """Try again and again, jittered exponential delays in between, until connected and subscribed."""
    backoff = Backoff(0.2, 10.0)
    while True:
        time.sleep(backoff.next_delay())
        try:
            _subscribe(client, settings, topics)
            return
        except MqttError as e:
            logger.info("reconnect attempt %d: %s", backoff.attempts, e)


# -- Kafka --------------------------------------------------------------------------------------------


def missing_topic(settings: KafkaSettings, topic: str) -> str:
    """The error for a topic that does not exist, with the fix that fits it."""
    where = f"Kafka topic {topic} does not exist on {settings.bootstrap_servers}"
    if topic in pipeline_topics(settings):
        return f"{where}: create it with `sensorpipe topics create`"
    names = ", ".join(pipeline_topics(settings))
    return f"{where}: check the name (`sensorpipe topics create` creates the pipeline's topics: {names})"


def follow_kafka(
    settings: KafkaSettings, topic: str, *, from_beginning: bool, notify: Notify, timeout_s: float = 5.0
) -> Generator[KafkaRecord, None, None]:
    """Records of every partition of `topic` as they arrive, from the end (or the beginning), forever.

    Partitions are assigned, not subscribed: no group membership, no rebalance, no commit. "From the end"
    starts at each partition's high watermark read before `notify` says so, so anything produced after
    that line is shown. librdkafka reconnects by itself with exponential backoff; a lost broker is said
    in one line, its return in another when records flow again.
    """
    partitions = _partitions(settings, topic, timeout_s)
    down: list[str] = []

    def on_error(error: RdKafkaError) -> None:
        if error.code() == RdKafkaError._ALL_BROKERS_DOWN and not down:
            down.append(error.str())
            notify(
                f"lost Kafka at {settings.bootstrap_servers} ({error.str()}): librdkafka reconnects with backoff;"
                " tailing resumes where it stopped"
            )

    # Connection failures come once, through on_error, not as a log line per retry (log_level 0).
    consumer = guest_consumer(settings, "sensorpipe-tail", error_cb=on_error, log_level=0)
    try:
        consumer.assign([_start(consumer, settings, topic, p, from_beginning, timeout_s) for p in partitions])
        origin = "the beginning" if from_beginning else "the end"
        notify(f"following {topic} ({len(partitions)} partition(s)) from {origin} on {settings.bootstrap_servers}")
        while True:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is None:
                if down:
                    down.clear()
                    notify(f"Kafka at {settings.bootstrap_servers} is back")
                yield kafka_record(message)
            elif error.fatal() or error.code() == RdKafkaError.UNKNOWN_TOPIC_OR_PART:
                raise KafkaError(f"Kafka at {settings.bootstrap_servers} stopped serving {topic}: {error.str()}")
            else:
                logger.info("kafka: %s", error.str())
    finally:
        consumer.close()


def guest_consumer(settings: KafkaSettings, name: str, **extra: Any) -> Consumer:
    """A consumer that moves no real consumer group: a group id of its own (`name-<random>`), no commits.

    Use it with assign(), never subscribe(): it reads where it is told and leaves every offset as it was.
    """
    own = {
        "group.id": f"{name}-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
    }
    return Consumer(client_config(settings, **own, **extra))


def _partitions(settings: KafkaSettings, topic: str, timeout_s: float) -> list[int]:
    admin = AdminClient(client_config(settings, log_level=0))
    metadata = cluster_metadata(admin, settings, timeout_s)
    if topic not in metadata.topics:
        raise KafkaError(missing_topic(settings, topic))
    return sorted(metadata.topics[topic].partitions)


def _start(
    consumer: Consumer, settings: KafkaSettings, topic: str, partition: int, from_beginning: bool, timeout_s: float
) -> TopicPartition:
    """Where reading starts: the log start, or the high watermark right now."""
    if from_beginning:
        return TopicPartition(topic, partition, OFFSET_BEGINNING)
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
    except KafkaException as e:
        raise KafkaError(
            f"Kafka at {settings.bootstrap_servers} did not tell the end of partition {partition} of {topic}"
            f" ({e.args[0].str()})"
        ) from e
    return TopicPartition(topic, partition, high)


def kafka_record(message: Message) -> KafkaRecord:
    """A record a consumer returned without error, as tail shows it."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None, "set on every record without error"
    kind, millis = message.timestamp()
    raw = message.headers() or []
    headers = raw.items() if isinstance(raw, dict) else raw
    return KafkaRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=None if kind == TIMESTAMP_NOT_AVAILABLE else datetime.fromtimestamp(millis / 1000, UTC),
        key=message.key(),
        headers=tuple((name, value.encode() if isinstance(value, str) else value) for name, value in headers),
        payload=message.value(),
    )
