"""The bridge's two clients as the few calls it makes of them, and the real MQTT one (paho).

The bridge takes its clients as arguments, so that its delivery order (acknowledge to MQTT only what
Kafka confirmed, in arrival order) is unit-tested with fakes; the integration tests prove the real
clients against Mosquitto and Kafka. `sensorpipe bridge` passes `PahoLink`, confluent-kafka's
`Producer` and `create_topics`.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import paho.mqtt.client as mqtt
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import Message
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from sensorpipe.clients.mqtt_client import make_v5_client
from sensorpipe.clients.topics import TopicOutcome
from sensorpipe.config import MqttSettings

DeliveryCallback = Callable[[RdKafkaError | None, Message], None]

_READ_BURST = 512


@dataclass(frozen=True)
class MqttHandlers:
    """What the bridge does when its MQTT link reports something; called from `MqttLink.network`."""

    on_connect: Callable[[bool, ReasonCode], None]
    """The broker's CONNACK: whether it kept the session, and its reason code (a failure: refused)."""
    on_subscribe: Callable[[list[ReasonCode]], None]
    """The SUBACK: one reason code per subscription."""
    on_disconnect: Callable[[ReasonCode], None]
    on_message: Callable[[mqtt.MQTTMessage], None]


class MqttLink(Protocol):
    """An MQTT v5 client whose QoS 1 acknowledgements are left to the bridge, its network turned by the bridge."""

    def connect(self, host: str, port: int, *, keepalive: int, clean_start: bool, properties: Properties) -> None:
        """Open the connection (raises OSError when TCP fails); the CONNACK comes through `on_connect`."""

    def reconnect(self) -> None:
        """Connect again with the arguments of the last `connect`."""

    def network(self, timeout_s: float) -> bool:
        """One turn of the network loop, waiting up to `timeout_s`; False when there is no connection."""

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        """Subscribe to (filter, QoS) pairs; the SUBACK comes through `on_subscribe`."""

    def ack(self, mid: int, qos: int) -> None: ...

    def disconnect(self) -> None: ...


MqttFactory = Callable[[MqttHandlers], MqttLink]
"""Builds the bridge's MQTT link around the bridge's handlers."""


class KafkaProducer(Protocol):
    """The calls the bridge makes of confluent-kafka's `Producer`."""

    def produce(
        self,
        topic: str,
        value: bytes,
        key: str | bytes | None,
        *,
        headers: list[tuple[str, str | bytes | None]],
        timestamp: int,
        on_delivery: DeliveryCallback,
    ) -> None:
        """Queue a record (raises BufferError when the queue is full); `on_delivery` comes from `poll`/`flush`."""

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...


ProducerFactory = Callable[[dict[str, object]], KafkaProducer]
"""Builds the producer from the bridge's librdkafka configuration (with its `error_cb`)."""

Provision = Callable[[], Iterable[TopicOutcome]]
"""Creates the pipeline's topics; raises `KafkaError` while Kafka cannot be reached."""


class PahoLink:
    """paho's MQTT v5 client with manual acknowledgements, on the bridge's own loop."""

    def __init__(self, settings: MqttSettings, client_id: str, handlers: MqttHandlers) -> None:
        self._handlers = handlers
        self._client = make_v5_client(settings, client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def connect(self, host: str, port: int, *, keepalive: int, clean_start: bool, properties: Properties) -> None:
        self._client.connect(host, port, keepalive=keepalive, clean_start=clean_start, properties=properties)

    def reconnect(self) -> None:
        self._client.reconnect()

    def network(self, timeout_s: float) -> bool:
        """One select() and a burst of reads: `client.loop()` reads one packet per call when nothing is
        outstanding, which for a subscriber means a select() and a keep-alive check per message."""
        client = self._client
        sock = client.socket()
        if sock is None:
            return False
        readable, writable, _ = select.select([sock], [sock] if client.want_write() else [], [], timeout_s)
        if readable:
            client.loop_read(max_packets=_READ_BURST)
        if writable and client.socket() is not None:
            client.loop_write()
        client.loop_misc()
        return True

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        self._client.subscribe(filters)

    def ack(self, mid: int, qos: int) -> None:
        self._client.ack(mid, qos)

    def disconnect(self) -> None:
        self._client.disconnect()

    def _on_connect(
        self, _client: mqtt.Client, _userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode, _props: object
    ) -> None:
        self._handlers.on_connect(flags.session_present, reason)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: object, _mid: int, reasons: list[ReasonCode], _props: object
    ) -> None:
        self._handlers.on_subscribe(reasons)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: ReasonCode, _props: object
    ) -> None:
        self._handlers.on_disconnect(reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        self._handlers.on_message(message)


__all__ = [
    "DeliveryCallback",
    "KafkaProducer",
    "MqttFactory",
    "MqttHandlers",
    "MqttLink",
    "PahoLink",
    "ProducerFactory",
    "Provision",
]
