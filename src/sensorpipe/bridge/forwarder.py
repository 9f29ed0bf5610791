"""The MQTT → Kafka bridge: every reading the broker accepted reaches Kafka, byte for byte.

Delivery guarantee (docs/design.md): the bridge holds a persistent MQTT v5 session (fixed client id, no
clean start, a session that outlives disconnects) and acknowledges a QoS 1 message only after Kafka
confirmed it (idempotent producer, acks=all). Until then the broker keeps the message and redelivers
it to the next session, so a crash can duplicate readings but never lose them. Acknowledgements leave
in the order the messages arrived, as MQTT requires.

One thread drives both clients: the MQTT network loop and librdkafka's delivery callbacks. The broker's
in-flight window is bounded by the v5 Receive Maximum we announce (`bridge.max_in_flight`): an
unbounded window is what collapsed QoS 1 throughput in the original stack. The clients come in as
arguments (`bridge.links`): `sensorpipe bridge` passes the real ones, the unit tests fakes.
"""

from __future__ import annotations

import base64
import collections
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import Message
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from sensorpipe.bridge.links import KafkaProducer, MqttFactory, MqttHandlers, ProducerFactory, Provision
from sensorpipe.bridge.metrics import BridgeMetrics, BridgeSnapshot
from sensorpipe.clients.backoff import Backoff
from sensorpipe.clients.kafka_client import KafkaError, client_config, refused_sasl_login
from sensorpipe.clients.mqtt_client import connect_error, refused_login
from sensorpipe.config import Settings
from sensorpipe.contract.headers import HEADER_RECEIVED_AT, HEADER_TOPIC
from sensorpipe.contract.identity import SensorKeys, id_subscriptions
from sensorpipe.contract.reasons import Reason
from sensorpipe.errors import SensorpipeError

logger = logging.getLogger(__name__)

MAX_RECORD_BYTES = 1_000_000
"""Kafka's default record limit; a larger MQTT payload goes to the dead-letter topic with its reason."""

Headers = list[tuple[str, str | bytes | None]]

_SESSION_NEVER_EXPIRES = 0xFFFFFFFF
_RECEIVE_MAXIMUM_LIMIT = 65535
_SESSION_TAKEN_OVER = 142
_LOOP_TIMEOUT_S = 0.002


@dataclass(slots=True)
class _Pending:
    """A message received from MQTT and not yet acknowledged to it."""

    mid: int
    qos: int
    generation: int
    received_s: float
    confirmed: bool = False


def producer_config(settings: Settings, client_id: str, **extra: object) -> dict[str, object]:
    """The bridge's producer: idempotent, acks=all (nothing acknowledged to MQTT before every replica has it).

    Public because the bench's Kafka ceiling must produce exactly as the bridge does.
    """
    return client_config(
        settings.kafka,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": settings.bridge.linger_ms,
            "message.max.bytes": MAX_RECORD_BYTES + 64 * 1024,
            "client.id": client_id,
            **extra,
        },
    )


class BridgeFatal(SensorpipeError):
    """Kafka refused records for a reason retrying cannot fix; nothing unconfirmed was acknowledged."""


class Bridge:
    """Forwards MQTT messages to Kafka until `stop()`; the totals are in `metrics`.

    `mqtt` builds the MQTT link around the bridge's handlers, `producer` the Kafka producer from the
    bridge's configuration, and `provision` creates the topics; `backoff(initial_s, max_s)` makes the
    delays between attempts to reach either broker.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        mqtt: MqttFactory,
        producer: ProducerFactory,
        provision: Provision,
        metrics: BridgeMetrics | None = None,
        backoff: Callable[[float, float], Backoff] = Backoff,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or BridgeMetrics()
        self.subscriptions = id_subscriptions(settings.mqtt)
        self._keys = SensorKeys(self.subscriptions, settings.readings.default_sensor_id)
        self._pending: collections.deque[_Pending] = collections.deque()
        self._generation = 0
        self._connected = False
        self._connecting = False
        self._stopping = False
        self._abandon = False
        self._fatal: str | None = None
        self._received_unreported = 0
        self._kafka_down = False
        self._backoff = backoff
        self._mqtt_backoff = backoff(0.2, 10.0)
        self._next_attempt = 0.0
        self._connect_args_given = False  # after the first connect(), reconnect() reuses its arguments
        self._make_producer = producer
        self._provision = provision
        self._producer: KafkaProducer | None = None
        self._client = mqtt(MqttHandlers(self._on_connect, self._on_subscribe, self._on_disconnect, self._on_message))

    # -- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish gracefully: confirmed messages are acknowledged, the rest stays with the broker.

        A second call gives up waiting for Kafka (those messages are redelivered next time).
        """
        if self._stopping:
            self._abandon = True
        self._stopping = True

    def run(self) -> None:
        """Provision topics, connect both sides, forward until stopped; raises BridgeFatal on a permanent error."""
        self._ensure_topics()
        if self._stopping:
            return
        self._producer = self._make_producer(self._producer_config())
        self.metrics.kafka_reachable.set(1)
        status_due = time.monotonic() + self.settings.bridge.status_interval_s
        last = self.metrics.snapshot()
        while not self._stopping and self._fatal is None:
            self._mqtt_step()
            self._producer.poll(0)
            self._acknowledge_confirmed()
            if time.monotonic() >= status_due:
                last = self._status_line(last)
                status_due = time.monotonic() + self.settings.bridge.status_interval_s
        self._drain()
        if self._fatal is not None:
            raise BridgeFatal(self._fatal)

    def _ensure_topics(self) -> None:
        """The bridge creates its topics (problem 3) and waits for Kafka as long as it takes."""
        backoff = self._backoff(0.5, 10.0)
        while not self._stopping:
            try:
                for outcome in self._provision():
                    if outcome.created:
                        logger.info("created Kafka topic %s (%d partitions)", outcome.topic, outcome.partitions)
                return
            except KafkaError as e:
                delay = backoff.next_delay()
                logger.warning("%s; retrying in %.1fs", e, delay)
                self._sleep(delay)

    def _drain(self) -> None:
        """Stop taking messages, wait for Kafka to confirm what is in flight, acknowledge it, disconnect."""
        assert self._producer is not None or not self._pending
        logger.info("stopping: %d message(s) in flight", len(self._pending))
        deadline = time.monotonic() + 30.0
        while self._pending and self._producer is not None and not self._abandon and self._fatal is None:
            if time.monotonic() > deadline:
                break
            self._producer.poll(0.05)
            self._acknowledge_confirmed()
            self._network(0)
        if self._producer is not None:
            self._producer.flush(0 if self._abandon else 5.0)
            self._acknowledge_confirmed()
        if self._pending:
            logger.warning(
                "%d message(s) not acknowledged: the broker redelivers them to the next bridge session",
                len(self._pending),
            )
        if self._connected:
            self._client.disconnect()
            self._network(0.1)
        self.metrics.mqtt_connected.set(0)
        self.metrics.mqtt_subscribed.set(0)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # -- MQTT ------------------------------------------------------------------------------------

    def _connect_properties(self) -> Properties:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = _SESSION_NEVER_EXPIRES
        properties.ReceiveMaximum = min(self.settings.bridge.max_in_flight, _RECEIVE_MAXIMUM_LIMIT)
        return properties

    def _mqtt_step(self) -> None:
        if self._connected or self._connecting:
            self._network(_LOOP_TIMEOUT_S)
            return
        now = time.monotonic()
        if now < self._next_attempt:
            time.sleep(min(_LOOP_TIMEOUT_S * 5, self._next_attempt - now))
            return
        host, port = self.settings.mqtt.host, self.settings.mqtt.port
        try:
            if self._connect_args_given:
                self._client.reconnect()
            else:
                self._client.connect(
                    host,
                    port,
                    keepalive=self.settings.mqtt.keepalive_s,
                    clean_start=False,
                    properties=self._connect_properties(),
                )
        except OSError as e:
            self._retry_mqtt_later(connect_error(host, port, e))
            return
        self._connect_args_given = True
        self._connecting = True

    def _network(self, timeout_s: float) -> None:
        if not self._client.network(timeout_s) and (self._connected or self._connecting):
            # Closed without an on_disconnect from the client: a lost connection.
            self._on_disconnect(ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"))

    def _retry_mqtt_later(self, why: str) -> None:
        delay = self._mqtt_backoff.next_delay()
        self._next_attempt = time.monotonic() + delay
        logger.warning("%s; retrying in %.1fs", why, delay)

    def _on_connect(self, session_present: bool, reason: ReasonCode) -> None:
        self._connecting = False
        host, port = self.settings.mqtt.host, self.settings.mqtt.port
        if reason.is_failure:
            self._retry_mqtt_later(refused_login(host, port, reason))
            return
        self._connected = True
        self._mqtt_backoff.reset()
        self.metrics.mqtt_connected.set(1)
        group = self.settings.bridge.share_group
        filters = [f"$share/{group}/{t}" if group else t for t in self.subscriptions]
        self._client.subscribe([(f, 1) for f in filters])
        logger.info(
            "connected to mqtt://%s:%d as %s (session %s); subscribed to %s",
            host,
            port,
            self.settings.bridge.client_id,
            "resumed" if session_present else "new",
            ", ".join(filters),
        )

    def _on_subscribe(self, reasons: list[ReasonCode]) -> None:
        """Readings are only safe from the broker's SUBACK on: a supervisor starts publishers after it."""
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            logger.error(
                "mqtt://%s:%d refused the subscription (%s): allow %s to subscribe to %s in the broker's ACL",
                self.settings.mqtt.host,
                self.settings.mqtt.port,
                ", ".join(refused),
                self.settings.mqtt.username or "the bridge",
                ", ".join(self.subscriptions),
            )
            return
        self.metrics.mqtt_subscribed.set(1)

    def _on_disconnect(self, reason: ReasonCode) -> None:
        was_connected = self._connected
        self._connected = self._connecting = False
        self.metrics.mqtt_subscribed.set(0)
        # Acknowledgements of this connection's messages are void now: the broker redelivers them.
        self._generation += 1
        self.metrics.mqtt_connected.set(0)
        if self._stopping:
            return
        self.metrics.errors.labels("mqtt_disconnect").inc()
        if reason.value == _SESSION_TAKEN_OVER:
            why = (
                f"another client took over MQTT session {self.settings.bridge.client_id}:"
                " give every bridge its own bridge.client_id"
            )
        else:
            where = f"mqtt://{self.settings.mqtt.host}:{self.settings.mqtt.port}"
            why = f"lost the MQTT connection to {where} ({reason})" if was_connected else f"no CONNACK ({reason})"
        self._retry_mqtt_later(why)

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        if self._stopping:
            return  # not acknowledged: the broker keeps it for the next session
        received = time.time()
        pending = _Pending(message.mid, message.qos, self._generation, time.perf_counter())
        self._pending.append(pending)
        self._received_unreported += 1
        topic, payload = message.topic, bytes(message.payload)
        received_ms = int(received * 1000)
        headers: Headers = [(HEADER_TOPIC, topic.encode()), (HEADER_RECEIVED_AT, str(received_ms).encode())]
        if len(payload) > MAX_RECORD_BYTES:
            self._dead_letter_oversized(topic, payload, received_ms, headers, pending)
            return
        self._produce(self.settings.kafka.topic, payload, self._keys.key(topic, payload), headers, received_ms, pending)

    def _acknowledge_confirmed(self) -> None:
        """Acknowledge, in arrival order, every message Kafka has confirmed; update the counters once per turn."""
        pending = self._pending
        acknowledged = 0
        while pending and pending[0].confirmed:
            done = pending.popleft()
            if done.qos and done.generation == self._generation and self._connected:
                self._client.ack(done.mid, done.qos)
                acknowledged += 1
        received, self._received_unreported = self._received_unreported, 0
        if received:
            self.metrics.received.inc(received)
        if acknowledged:
            self.metrics.acknowledged.inc(acknowledged)
        if received or acknowledged:
            self.metrics.in_flight.set(len(pending))

    # -- Kafka -----------------------------------------------------------------------------------

    def _producer_config(self) -> dict[str, object]:
        return producer_config(self.settings, self.settings.bridge.client_id, error_cb=self._on_kafka_error)

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Headers,
        timestamp_ms: int,
        pending: _Pending,
    ) -> None:
        assert self._producer is not None
        on_delivery = functools.partial(self._on_delivery, pending)
        while True:
            try:
                self._producer.produce(
                    topic, value, key, headers=headers, timestamp=timestamp_ms, on_delivery=on_delivery
                )
                return
            except BufferError:
                self._producer.poll(0.05)  # librdkafka's queue is full: let deliveries drain it

    def _on_delivery(self, pending: _Pending, error: RdKafkaError | None, message: Message) -> None:
        if error is None:
            pending.confirmed = True
            self.metrics.forwarded.inc()
            self.metrics.latency.observe(time.perf_counter() - pending.received_s)
            if self._kafka_down:
                self._kafka_down = False
                self.metrics.kafka_reachable.set(1)
                logger.info("Kafka at %s confirms records again", self.settings.kafka.bootstrap_servers)
            return
        if error.fatal() or not (error.retriable() or error.code() == RdKafkaError._MSG_TIMED_OUT):
            self._fatal = (
                f"Kafka at {self.settings.kafka.bootstrap_servers} refused a record for {message.topic()}:"
                f" {error.str()}. Nothing unconfirmed was acknowledged; fix the cause and restart the bridge"
            )
            return
        # Not confirmed in time (Kafka down or restarting): send it again rather than acknowledge or drop it.
        self.metrics.errors.labels("kafka_retry").inc()
        raw = message.headers() or []
        headers: Headers = list(raw.items()) if isinstance(raw, dict) else list(raw)
        self._produce(
            message.topic() or self.settings.kafka.topic,
            message.value() or b"",
            message.key(),
            headers,
            message.timestamp()[1],
            pending,
        )

    def _on_kafka_error(self, error: RdKafkaError) -> None:
        if error.code() == RdKafkaError._ALL_BROKERS_DOWN and not self._kafka_down:
            self._kafka_down = True
            self.metrics.kafka_reachable.set(0)
            self.metrics.errors.labels("kafka_unreachable").inc()
            logger.warning(
                "Kafka at %s is unreachable: readings wait in MQTT until it is back"
                " (is `sensorpipe stack up` running?)",
                self.settings.kafka.bootstrap_servers,
            )
        elif error.code() == RdKafkaError._AUTHENTICATION and not self._kafka_down:
            self._kafka_down = True
            self.metrics.kafka_reachable.set(0)
            self.metrics.errors.labels("kafka_login_refused").inc()
            logger.error("%s; readings wait in MQTT meanwhile", refused_sasl_login(self.settings.kafka, error))
        elif error.fatal():
            self._fatal = f"Kafka producer failed: {error.str()}"

    def _dead_letter_oversized(
        self, topic: str, payload: bytes, received_ms: int, headers: Headers, pending: _Pending
    ) -> None:
        """Kafka cannot hold it; the dead-letter topic gets its reason and its first kilobyte."""
        record = {
            "reason": Reason.PAYLOAD_TOO_LARGE.value,
            "detail": f"{len(payload)} bytes, more than Kafka's record limit of {MAX_RECORD_BYTES}",
            "mqtt_topic": topic,
            "received_at_ms": received_ms,
            "payload_prefix_base64": base64.b64encode(payload[:1024]).decode(),
        }
        self.metrics.dead_lettered.labels(Reason.PAYLOAD_TOO_LARGE.value).inc()
        logger.warning("dead-lettered a %d-byte message from %s: larger than Kafka's record limit", len(payload), topic)
        key = self._keys.key(topic, b"")
        self._produce(self.settings.kafka.dlq_topic, json.dumps(record).encode(), key, headers, received_ms, pending)

    # -- reporting -------------------------------------------------------------------------------

    def _status_line(self, last: BridgeSnapshot) -> BridgeSnapshot:
        now = self.metrics.snapshot()
        interval = self.settings.bridge.status_interval_s
        rate = (now.forwarded - last.forwarded) / interval
        latency = (
            f"p50 {now.latency_p50_ms:.1f} ms, p99 {now.latency_p99_ms:.1f} ms"
            if now.latency_p50_ms is not None and now.latency_p99_ms is not None
            else "no latency yet"
        )
        logger.info(
            "%s, forwarded %s (%s/s), acknowledged %s, in flight %d, %s, dead-lettered %d, recovered errors %d",
            "mqtt up" if self._connected else "mqtt DOWN",
            f"{now.forwarded:,}",
            f"{rate:,.0f}",
            f"{now.acknowledged:,}",
            now.in_flight,
            latency,
            now.dead_lettered,
            now.errors,
        )
        return now
