"""The bridge's delivery order with fake clients: nothing is acknowledged to MQTT before Kafka confirmed it.

A test is a script of what the MQTT broker and Kafka do, one step per turn of the bridge's network
loop (`yield`); when the script ends the bridge is asked to stop. The fakes implement only the calls
the bridge makes; tests/integration/bridge proves the same against Mosquitto and Kafka.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message
from confluent_kafka import KafkaError as RdKafkaError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from sensorpipe.bridge.forwarder import MAX_RECORD_BYTES, Bridge, BridgeFatal
from sensorpipe.bridge.links import DeliveryCallback, MqttHandlers
from sensorpipe.clients.backoff import Backoff
from sensorpipe.clients.kafka_client import KafkaError
from sensorpipe.clients.topics import TopicOutcome
from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError

SETTINGS = Settings(bridge={"client_id": "bridge-under-test", "max_in_flight": 100, "status_interval_s": 3600})
Script = Iterator[None]


def quick(_initial_s: float, _max_s: float) -> Backoff:
    """Retry delays of a millisecond: the tests wait for nothing."""
    return Backoff(0.001, 0.001)


def reading(sensor: str, seq: int) -> bytes:
    return json.dumps({"sensor_id": sensor, "seq": seq, "temperature": 21.5}).encode()


class FakeBroker:
    """The MQTT broker as the bridge sees it through its link; runs the test's script, a step per network turn."""

    def __init__(self, handlers: MqttHandlers) -> None:
        self.handlers = handlers
        self.script: Script = iter(())
        self.on_script_end: Callable[[], None] = lambda: None
        self.connect_outcomes: collections.deque[OSError | str] = collections.deque()
        """What the next connection attempts meet: an OSError (TCP fails) or a CONNACK reason; then success."""
        self.refuse_subscription = False
        self.session_present = False
        self.up = False
        self.attempts: list[str] = []
        self.connect_args: dict[str, object] = {}
        self.subscriptions: list[tuple[str, int]] = []
        self.acks: list[int] = []
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._mid = 0

    # -- what the bridge calls ---------------------------------------------------------------------

    def connect(self, host: str, port: int, *, keepalive: int, clean_start: bool, properties: Properties) -> None:
        self.connect_args = {"host": host, "port": port, "clean_start": clean_start, "properties": properties}
        self._attempt("connect")

    def reconnect(self) -> None:
        self._attempt("reconnect")

    def network(self, timeout_s: float) -> bool:
        while self._inbox:
            self._inbox.popleft()()
        if self.up:
            try:
                next(self.script)
            except StopIteration:
                self.on_script_end()
        return self.up

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        self.subscriptions += filters
        reason = "Not authorized" if self.refuse_subscription else "Granted QoS 1"
        reasons = [ReasonCode(PacketTypes.SUBACK, reason) for _ in filters]
        self._inbox.append(lambda: self.handlers.on_subscribe(reasons))

    def ack(self, mid: int, qos: int) -> None:
        assert qos == 1
        self.acks.append(mid)

    def disconnect(self) -> None:
        self.up = False
        self._inbox.append(
            lambda: self.handlers.on_disconnect(ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection"))
        )

    # -- what a script does ------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes) -> int:
        """A QoS 1 message to the bridge; returns its packet id."""
        self._mid += 1
        message = mqtt.MQTTMessage(mid=self._mid, topic=topic.encode())
        message.payload, message.qos = payload, 1
        self.handlers.on_message(message)
        return self._mid

    def lose_connection(self) -> None:
        """The socket is gone without a word from the client (a broker restart, a cable)."""
        self.up = False

    def _attempt(self, how: str) -> None:
        self.attempts.append(how)
        outcome = self.connect_outcomes.popleft() if self.connect_outcomes else "Success"
        if isinstance(outcome, OSError):
            raise outcome
        self.up = outcome == "Success"
        reason = ReasonCode(PacketTypes.CONNACK, outcome)
        self._inbox.append(lambda: self.handlers.on_connect(self.session_present, reason))


@dataclass
class Record:
    topic: str
    value: bytes
    key: str | bytes | None
    headers: list[tuple[str, str | bytes | None]]
    timestamp: int
    on_delivery: DeliveryCallback


class FakeKafka:
    """The bridge's producer: records what it sends and confirms it when the test lets it."""

    def __init__(self) -> None:
        self.config: dict[str, object] = {}
        self.holding = False
        """While True nothing is confirmed (Kafka slow or down)."""
        self.failures: collections.deque[RdKafkaError] = collections.deque()
        """The next deliveries fail with these."""
        self.full = 0
        """The next produce() calls find librdkafka's queue full."""
        self.queued: list[Record] = []
        self.sent: list[Record] = []
        self.confirmed: list[Record] = []

    def producer(self, config: dict[str, object]) -> FakeKafka:
        self.config = config
        return self

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
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        record = Record(topic, value, key, headers, timestamp, on_delivery)
        self.queued.append(record)
        self.sent.append(record)

    def poll(self, timeout: float) -> int:
        if self.holding:
            return 0
        return self.confirm(*range(len(self.queued)))

    def flush(self, timeout: float) -> int:
        self.poll(timeout)
        return len(self.queued)

    def confirm(self, *indices: int) -> int:
        """Deliver the queued records at `indices` (the next failure, if any, else success)."""
        chosen = [self.queued[i] for i in indices]
        self.queued = [r for r in self.queued if r not in chosen]
        for record in chosen:
            error = self.failures.popleft() if self.failures else None
            if error is None:
                self.confirmed.append(record)
            key = record.key.encode() if isinstance(record.key, str) else record.key
            message = Message(
                topic=record.topic,
                value=record.value,
                key=key,
                headers=record.headers,
                timestamp=(TIMESTAMP_CREATE_TIME, record.timestamp),
                error=error,
            )
            record.on_delivery(error, message)
        return len(chosen)

    def report(self, error: RdKafkaError) -> None:
        """What librdkafka tells its `error_cb` (brokers down, a refused login, a fatal error)."""
        error_cb = self.config["error_cb"]
        assert callable(error_cb)
        error_cb(error)


class Harness:
    """A bridge on fake clients; `run(script)` runs it until the script ended and the bridge stopped."""

    def __init__(
        self, settings: Settings = SETTINGS, provision: Callable[[], list[TopicOutcome]] | None = None
    ) -> None:
        self.kafka = FakeKafka()
        self.broker: FakeBroker | None = None
        self.bridge = Bridge(
            settings,
            mqtt=self._link,
            producer=self.kafka.producer,
            provision=provision or (lambda: []),
            backoff=quick,
        )
        self.mqtt = self.broker
        assert self.mqtt is not None

    def _link(self, handlers: MqttHandlers) -> FakeBroker:
        self.broker = FakeBroker(handlers)
        return self.broker

    def run(self, script: Callable[[FakeBroker, FakeKafka], Script]) -> None:
        assert self.mqtt is not None
        self.mqtt.script = script(self.mqtt, self.kafka)
        self.mqtt.on_script_end = self.bridge.stop
        self.bridge.run()

    def gauge(self, name: str) -> float | None:
        return self.bridge.metrics.registry.get_sample_value(f"sensorpipe_bridge_{name}")


def turns(n: int = 3) -> Script:
    """A few network turns: the bridge polls Kafka and acknowledges what it confirmed."""
    for _ in range(n):
        yield


def test_a_message_is_acknowledged_only_after_kafka_confirmed_it() -> None:
    harness = Harness()
    seen: dict[str, object] = {}

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.holding = True
        mid = broker.publish("sensors/s1/data", reading("s1", 1))
        yield from turns()
        assert [r.value for r in kafka.sent] == [reading("s1", 1)]
        assert broker.acks == [], "acknowledged before Kafka confirmed"
        assert harness.gauge("in_flight") == 1
        kafka.holding = False
        yield from turns()
        seen["acks"], seen["mid"] = list(broker.acks), mid

    harness.run(script)
    assert seen["acks"] == [seen["mid"]]
    record = harness.kafka.confirmed[0]
    assert (record.topic, record.value, record.key) == ("sensor-data", reading("s1", 1), "s1")
    assert b"sensors/s1/data" in dict(record.headers).values()
    # The producer that makes this safe: idempotent, every replica has the record before it is confirmed.
    assert harness.kafka.config["acks"] == "all" and harness.kafka.config["enable.idempotence"] is True
    totals = harness.bridge.metrics.snapshot()
    assert (totals.received, totals.forwarded, totals.acknowledged, totals.in_flight) == (1, 1, 1, 0)


def test_acknowledgements_leave_in_arrival_order_whatever_order_kafka_confirms_in() -> None:
    harness = Harness()
    acks_before_the_first: list[int] = []

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.holding = True
        for seq, sensor in enumerate(["a", "b", "a", "c"]):
            broker.publish(f"sensors/{sensor}/data", reading(sensor, seq))
        yield
        kafka.confirm(3, 2, 1)  # other partitions, confirmed before the first message
        yield from turns()
        acks_before_the_first.extend(broker.acks)
        kafka.confirm(0)
        yield from turns()

    harness.run(script)
    assert acks_before_the_first == []
    assert harness.mqtt is not None and harness.mqtt.acks == [1, 2, 3, 4]
    sent = harness.kafka.sent
    assert [json.loads(r.value)["seq"] for r in sent] == [0, 1, 2, 3], "records leave in arrival order"
    assert [r.key for r in sent] == ["a", "b", "a", "c"], "one sensor, one key, so one partition"


def test_the_legacy_topic_is_keyed_by_the_payloads_sensor_id() -> None:
    harness = Harness()

    def script(broker: FakeBroker, _kafka: FakeKafka) -> Script:
        broker.publish("sensors/data", reading("boiler-3", 1))
        broker.publish("sensors/data", b"not json")
        yield from turns()

    harness.run(script)
    assert [r.key for r in harness.kafka.sent] == ["boiler-3", SETTINGS.readings.default_sensor_id]
    assert harness.mqtt is not None and harness.mqtt.acks == [1, 2]


def test_a_delivery_that_timed_out_is_sent_again_and_acknowledged_only_once_confirmed() -> None:
    harness = Harness()
    acks_after_the_failure: list[int] = []

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.holding = True
        broker.publish("sensors/s1/data", reading("s1", 1))
        yield
        kafka.failures.append(RdKafkaError(RdKafkaError._MSG_TIMED_OUT, "Local: Message timed out", retriable=True))
        kafka.confirm(0)
        yield from turns()
        acks_after_the_failure.extend(broker.acks)
        kafka.holding = False
        yield from turns()

    harness.run(script)
    assert acks_after_the_failure == [], "a failed delivery must not be acknowledged: the broker redelivers it"
    first, again = harness.kafka.sent
    assert (again.topic, again.value, again.headers, again.timestamp) == (
        first.topic,
        first.value,
        first.headers,
        first.timestamp,
    )
    assert (first.key, again.key) == ("s1", b"s1")  # librdkafka hands the key back as bytes
    assert harness.mqtt is not None and harness.mqtt.acks == [1]
    assert harness.bridge.metrics.total("errors") == 1


def test_a_full_producer_queue_waits_instead_of_dropping() -> None:
    harness = Harness()

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.full = 3
        broker.publish("sensors/s1/data", reading("s1", 1))
        yield from turns()

    harness.run(script)
    assert [r.value for r in harness.kafka.confirmed] == [reading("s1", 1)]
    assert harness.mqtt is not None and harness.mqtt.acks == [1]


def test_a_record_kafka_refuses_for_good_stops_the_bridge_in_one_line_acknowledging_only_what_was_confirmed() -> None:
    harness = Harness()

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        broker.publish("sensors/s1/data", reading("s1", 1))
        yield from turns()
        kafka.failures.append(
            RdKafkaError(RdKafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed")
        )
        broker.publish("sensors/s1/data", reading("s1", 2))
        broker.publish("sensors/s1/data", reading("s1", 3))
        yield from turns()
        raise AssertionError("the bridge kept running after a permanent error")

    with pytest.raises(BridgeFatal) as failure:
        harness.run(script)
    message = str(failure.value)
    assert isinstance(failure.value, SensorpipeError)  # `cli.main` prints it as the one-line error
    assert "\n" not in message
    assert "refused a record for sensor-data: Broker: Topic authorization failed" in message
    assert "Nothing unconfirmed was acknowledged; fix the cause and restart the bridge" in message
    assert harness.mqtt is not None and harness.mqtt.acks == [1]


def test_a_fatal_producer_error_stops_the_bridge_in_one_line() -> None:
    harness = Harness()

    def script(_broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.report(RdKafkaError(RdKafkaError._FATAL, "producer fenced", fatal=True))
        yield
        raise AssertionError("the bridge kept running after a fatal error")

    with pytest.raises(BridgeFatal, match=r"^Kafka producer failed: producer fenced$"):
        harness.run(script)


def test_kafka_unreachable_or_refusing_the_login_is_said_once_and_readings_wait_in_mqtt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness()
    reachable: list[float | None] = []

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.holding = True
        kafka.report(RdKafkaError(RdKafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed"))
        kafka.report(RdKafkaError(RdKafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed"))
        broker.publish("sensors/s1/data", reading("s1", 1))
        yield from turns()
        reachable.append(harness.gauge("kafka_reachable"))
        assert broker.acks == []
        kafka.holding = False
        yield from turns()
        reachable.append(harness.gauge("kafka_reachable"))

    with caplog.at_level(logging.INFO, logger="sensorpipe"):
        harness.run(script)
    refused = [r.getMessage() for r in caplog.records if "refused the PLAIN login" in r.getMessage()]
    assert len(refused) == 1, refused
    assert "check kafka.sasl_username and kafka.sasl_password" in refused[0]
    assert "readings wait in MQTT meanwhile" in refused[0]
    assert "\n" not in refused[0]
    assert reachable == [0, 1]
    assert "Kafka at 127.0.0.1:9092 confirms records again" in caplog.text
    assert harness.mqtt is not None and harness.mqtt.acks == [1]


def test_the_session_outlives_disconnects_and_messages_of_a_lost_connection_are_not_acknowledged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness()

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.holding = True
        broker.publish("sensors/s1/data", reading("s1", 1))
        yield
        broker.session_present = True  # the next CONNACK: the broker kept the session
        broker.lose_connection()
        yield
        kafka.holding = False  # Kafka confirms after the connection is gone: its ack would go to no session
        yield from turns()
        broker.publish("sensors/s1/data", reading("s1", 1))  # the broker redelivers it on the resumed session
        yield from turns()

    with caplog.at_level(logging.INFO, logger="sensorpipe"):
        harness.run(script)
    broker = harness.mqtt
    assert broker is not None
    assert broker.attempts == ["connect", "reconnect"]
    assert broker.acks == [2], "only the redelivered copy is acknowledged, on the session that has it"
    assert len(harness.kafka.confirmed) == 2  # at least once: a duplicate, never a loss
    assert broker.connect_args["clean_start"] is False
    properties = broker.connect_args["properties"]
    assert isinstance(properties, Properties)
    assert properties.SessionExpiryInterval == 0xFFFFFFFF
    assert properties.ReceiveMaximum == SETTINGS.bridge.max_in_flight
    assert "lost the MQTT connection to mqtt://127.0.0.1:1883" in caplog.text
    assert "(session resumed)" in caplog.text
    assert harness.bridge.metrics.total("errors") == 1


def test_an_unreachable_broker_is_retried_with_backoff_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    assert harness.mqtt is not None
    harness.mqtt.connect_outcomes.extend([ConnectionRefusedError(), ConnectionRefusedError()])
    subscribed: list[float | None] = []

    def script(_broker: FakeBroker, _kafka: FakeKafka) -> Script:
        subscribed.append(harness.gauge("mqtt_subscribed"))
        yield

    with caplog.at_level(logging.INFO, logger="sensorpipe"):
        harness.run(script)
    refused = "MQTT broker at 127.0.0.1:1883 refused the connection: is `sensorpipe stack up` running?; retrying in"
    assert caplog.text.count(refused) == 2
    assert harness.mqtt.attempts == ["connect", "connect", "connect"]  # no connection yet: connect, not reconnect
    assert harness.mqtt.subscriptions == [("sensors/+/data", 1), ("sensors/data", 1)]
    assert subscribed == [1]
    assert harness.gauge("mqtt_subscribed") == 0 and harness.gauge("mqtt_connected") == 0  # after the stop


def test_a_refused_mqtt_login_names_the_settings_to_fix_and_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    assert harness.mqtt is not None
    harness.mqtt.connect_outcomes.append("Bad user name or password")

    with caplog.at_level(logging.INFO, logger="sensorpipe"):
        harness.run(lambda _broker, _kafka: turns(1))
    (refusal,) = [r.getMessage() for r in caplog.records if "refused the login" in r.getMessage()]
    assert refusal.startswith(
        "MQTT broker at 127.0.0.1:1883 refused the login (Bad user name or password): check"
        " mqtt.username/mqtt.password (a secure stack home keeps sensorpipe's own in"
        " <home>/secrets/credentials.json); retrying in "
    )
    assert harness.mqtt.attempts == ["connect", "reconnect"]


def test_a_refused_subscription_is_said_and_the_bridge_never_reports_itself_subscribed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness()
    assert harness.mqtt is not None
    harness.mqtt.refuse_subscription = True
    with caplog.at_level(logging.INFO, logger="sensorpipe"):
        harness.run(lambda _broker, _kafka: turns())
    assert "refused the subscription (Not authorized, Not authorized)" in caplog.text
    assert "in the broker's ACL" in caplog.text
    assert harness.gauge("mqtt_subscribed") == 0


def test_a_session_taken_over_by_another_bridge_says_to_give_each_its_own_client_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness()

    def script(broker: FakeBroker, _kafka: FakeKafka) -> Script:
        broker.up = False
        broker.handlers.on_disconnect(ReasonCode(PacketTypes.DISCONNECT, "Session taken over"))
        yield

    with caplog.at_level(logging.INFO, logger="sensorpipe"):
        harness.run(script)
    assert (
        "another client took over MQTT session bridge-under-test: give every bridge its own bridge.client_id"
        in caplog.text
    )


def test_kafka_down_at_the_start_is_waited_for_then_the_topics_are_created(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []

    def provision() -> list[TopicOutcome]:
        attempts.append(1)
        if len(attempts) < 3:
            raise KafkaError("Kafka at 127.0.0.1:9092 did not answer")
        return [TopicOutcome("sensor-data", True, 3), TopicOutcome("sensor-data-dlq", False, 3)]

    harness = Harness(provision=provision)
    with caplog.at_level(logging.INFO, logger="sensorpipe"):
        harness.run(lambda _broker, _kafka: turns(1))
    assert len(attempts) == 3
    assert caplog.text.count("Kafka at 127.0.0.1:9092 did not answer; retrying in") == 2
    assert "created Kafka topic sensor-data (3 partitions)" in caplog.text
    assert "created Kafka topic sensor-data-dlq" not in caplog.text


def test_a_stop_while_waiting_for_kafka_returns_without_touching_mqtt() -> None:
    def provision() -> list[TopicOutcome]:
        harness.bridge.stop()  # Ctrl+C while Kafka does not answer
        raise KafkaError("Kafka at 127.0.0.1:9092 did not answer")

    harness = Harness(provision=provision)
    harness.bridge.run()
    assert harness.kafka.config == {}, "no producer without topics"
    assert harness.mqtt is not None and harness.mqtt.attempts == []


def test_a_stop_waits_for_kafka_to_confirm_what_is_in_flight_and_acknowledges_it() -> None:
    harness = Harness()

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.holding = True
        broker.publish("sensors/s1/data", reading("s1", 1))
        broker.publish("sensors/s2/data", reading("s2", 1))
        yield
        harness.bridge.stop()
        broker.publish("sensors/s3/data", reading("s3", 1))  # arrives while stopping: left with the broker
        kafka.holding = False

    harness.run(script)
    assert harness.mqtt is not None and harness.mqtt.acks == [1, 2]
    assert [r.key for r in harness.kafka.sent] == ["s1", "s2"]
    assert harness.mqtt.up is False, "disconnected at the end"


def test_a_second_stop_gives_up_on_kafka_and_leaves_the_rest_to_the_broker(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()

    def script(broker: FakeBroker, kafka: FakeKafka) -> Script:
        kafka.holding = True
        broker.publish("sensors/s1/data", reading("s1", 1))
        yield
        harness.bridge.stop()
        harness.bridge.stop()

    with caplog.at_level(logging.INFO, logger="sensorpipe"):
        harness.run(script)
    assert harness.mqtt is not None and harness.mqtt.acks == []
    assert "1 message(s) not acknowledged: the broker redelivers them to the next bridge session" in caplog.text


def test_a_payload_larger_than_kafka_takes_goes_to_the_dead_letter_topic_and_is_acknowledged() -> None:
    harness = Harness()
    huge = b"x" * (MAX_RECORD_BYTES + 1)

    def script(broker: FakeBroker, _kafka: FakeKafka) -> Script:
        broker.publish("sensors/big/data", huge)
        yield from turns()

    harness.run(script)
    (record,) = harness.kafka.confirmed
    assert record.topic == "sensor-data-dlq" and record.key == "big"
    letter = json.loads(record.value)
    assert letter["reason"] == "payload_too_large" and letter["mqtt_topic"] == "sensors/big/data"
    assert harness.mqtt is not None and harness.mqtt.acks == [1]
    assert harness.bridge.metrics.snapshot().dead_lettered == 1
