"""Kafka client configuration built one way from settings, and errors that say what to do."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata, OffsetSpec

from sensorpipe.config import KafkaSettings
from sensorpipe.errors import SensorpipeError


class KafkaError(SensorpipeError):
    """Kafka could not be reached or refused a request; the message says why and what to do."""


class KafkaLoginError(KafkaError):
    """Kafka refused the SASL login: the fix is a setting, not a broker to start."""


def client_config(settings: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """librdkafka settings shared by every producer, consumer and admin client of sensorpipe.

    librdkafka's own log lines go through Python logging (`sensorpipe.librdkafka`), not raw to stderr.
    The dict holds the SASL password: pass it to a client, never to a log line.
    """
    config = {
        "bootstrap.servers": settings.bootstrap_servers,
        "logger": _librdkafka_logger,
        **security_config(settings),
        **extra,
    }
    if settings.uses_sasl:
        config["error_cb"] = functools.partial(_note_refused_login, settings, extra.get("error_cb"))
    return config


_refused_logins: dict[tuple[str, str | None], str] = {}
"""The last SASL refusal per (brokers, user), noted by the clients' error callback for `cluster_metadata`."""


def _note_refused_login(
    settings: KafkaSettings, then: Callable[[RdKafkaError], None] | None, error: RdKafkaError
) -> None:
    """Note a refused login, then hand the error to the client's own callback, if it has one."""
    if error.code() == RdKafkaError._AUTHENTICATION:
        _refused_logins[(settings.bootstrap_servers, settings.sasl_username)] = refused_sasl_login(settings, error)
    if then is not None:
        then(error)


def refused_sasl_login(settings: KafkaSettings, error: RdKafkaError) -> str:
    """What a failed SASL handshake means for the user, and what to do (the error names no password)."""
    cause = error.str().rsplit("SASL authentication error: ", 1)[-1].split(" (after ", 1)[0]
    return (
        f"Kafka at {settings.bootstrap_servers} refused the {settings.sasl_mechanism} login of"
        f" {settings.sasl_username or '(no kafka.sasl_username)'} ({cause}): check kafka.sasl_username and"
        " kafka.sasl_password (a secure stack home keeps sensorpipe's own in <home>/secrets/credentials.json)"
    )


def security_config(settings: KafkaSettings) -> dict[str, str]:
    """The security settings in Kafka's own names, which librdkafka and the Java client share.

    The Java-only ones (the JAAS line, a PEM trust store) are added by `spark_kafka_options`.
    """
    config: dict[str, str] = {"security.protocol": settings.security_protocol}
    if settings.uses_sasl:
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username or ""
        config["sasl.password"] = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    if settings.ssl_ca_location is not None and settings.security_protocol.endswith("SSL"):
        config["ssl.ca.location"] = str(settings.ssl_ca_location)
    return config


def spark_kafka_options(settings: KafkaSettings) -> dict[str, str]:
    """Options of Spark's Kafka source and sink: the same brokers and security as `client_config`.

    Every `spark.read(Stream).format("kafka")` of sensorpipe takes these, so the two clients cannot drift.
    Spark redacts `kafka.sasl.jaas.config` in its logs and UI (KafkaRedactionUtil).
    """
    security = security_config(settings)
    options = {"kafka.bootstrap.servers": settings.bootstrap_servers}
    options |= {f"kafka.{key}": value for key, value in security.items() if key in _SHARED_WITH_JAVA}
    if "sasl.mechanism" in security:
        module = "plain.PlainLoginModule" if settings.sasl_mechanism == "PLAIN" else "scram.ScramLoginModule"
        user, password = _jaas_quoted(security["sasl.username"]), _jaas_quoted(security["sasl.password"])
        options["kafka.sasl.jaas.config"] = (
            f"org.apache.kafka.common.security.{module} required username={user} password={password};"
        )
    if "ssl.ca.location" in security:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = security["ssl.ca.location"]
    return options


_SHARED_WITH_JAVA = {"security.protocol", "sasl.mechanism"}
"""The `security_config` keys the Java client takes as they are; the login and the CA go in its own terms."""


def _jaas_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_librdkafka_logger = logging.getLogger("sensorpipe.librdkafka")
# A refused SASL login is said once, clearly, by whoever sees it through the error callback (`refused_sasl_login`);
# librdkafka would repeat its own line on every reconnect.
_librdkafka_logger.addFilter(lambda record: "SASL authentication error" not in record.getMessage())


def cluster_metadata(admin: AdminClient, settings: KafkaSettings, timeout_s: float) -> ClusterMetadata:
    """One metadata request, or a KafkaError that says what to do (a refused SASL login says so)."""
    key = (settings.bootstrap_servers, settings.sasl_username)
    _refused_logins.pop(key, None)
    deadline = time.monotonic() + timeout_s
    while True:  # in slices of a second: a refused login is known long before the timeout
        try:
            return admin.list_topics(timeout=max(0.01, min(1.0, deadline - time.monotonic())))
        except KafkaException as e:
            admin.poll(0)  # serves the error callbacks, which note a refused login
            refused = _refused_logins.pop(key, None)
            if refused is not None:
                raise KafkaLoginError(refused) from e
            if time.monotonic() >= deadline:
                raise KafkaError(
                    f"Kafka at {settings.bootstrap_servers} did not answer a metadata request ({e.args[0].str()}):"
                    f" is `sensorpipe stack up` running?{_protocol_hint(settings)}"
                ) from e


def _protocol_hint(settings: KafkaSettings) -> str:
    if settings.uses_sasl:
        return ""
    return f" (a broker that requires SASL drops {settings.security_protocol} clients: kafka.security_protocol)"


def cluster_summary(settings: KafkaSettings, timeout_s: float = 3.0) -> str:
    """The health check of the broker."""
    metadata = cluster_metadata(AdminClient(client_config(settings, log_level=0)), settings, timeout_s)
    return f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)"


def admin_client(settings: KafkaSettings) -> AdminClient:
    """A quiet admin client (no librdkafka log lines); a caller that asks every second keeps one."""
    return AdminClient(client_config(settings, log_level=0))


_NO_LEADER_YET = frozenset(
    {RdKafkaError.LEADER_NOT_AVAILABLE, RdKafkaError.NOT_LEADER_FOR_PARTITION, RdKafkaError.UNKNOWN_TOPIC_OR_PART}
)


def _offsets(
    admin: AdminClient,
    settings: KafkaSettings,
    topic: str,
    partitions: list[int],
    spec: OffsetSpec,
    deadline: float,
) -> dict[int, int]:
    """Each partition's offset at `spec`, asked again until `deadline` while Kafka says to retry: a topic
    created a moment ago has no leader yet on a busy broker (LEADER_NOT_AVAILABLE), which is not a fault."""
    while True:
        left = max(deadline - time.monotonic(), 0.1)
        futures = admin.list_offsets({TopicPartition(topic, p): spec for p in partitions}, request_timeout=left)
        try:
            return {tp.partition: future.result().offset for tp, future in futures.items()}
        except KafkaException as e:
            error = e.args[0]
            again = error.retriable() or error.code() in _NO_LEADER_YET
            if not (again and time.monotonic() < deadline - 0.5):
                raise KafkaError(
                    f"Kafka at {settings.bootstrap_servers} did not list the offsets of {topic} ({error.str()}):"
                    " check the broker's log"
                ) from e
            time.sleep(0.25)


def watermarks(
    settings: KafkaSettings, topic: str, timeout_s: float = 5.0, admin: AdminClient | None = None
) -> dict[int, tuple[int, int]] | None:
    """Each partition's (first offset Kafka still retains, next offset it will write); None without the topic."""
    admin = admin or admin_client(settings)
    found = cluster_metadata(admin, settings, timeout_s).topics.get(topic)
    if found is None or found.error is not None:
        return None
    deadline = time.monotonic() + timeout_s
    low, high = (
        _offsets(admin, settings, topic, list(found.partitions), spec, deadline)
        for spec in (OffsetSpec.earliest(), OffsetSpec.latest())  # type: ignore[no-untyped-call]
    )
    return {partition: (low[partition], high[partition]) for partition in sorted(found.partitions)}


def topic_id(settings: KafkaSettings, topic: str, timeout_s: float = 10.0) -> str:
    """The topic's id: Kafka gives a topic deleted and created again under the same name a new one."""
    admin = admin_client(settings)  # held until the answer is in: its handle dies with it
    futures = admin.describe_topics(TopicCollection([topic]), request_timeout=timeout_s)
    try:
        return str(futures[topic].result().topic_id)
    except KafkaException as e:
        raise KafkaError(
            f"Kafka at {settings.bootstrap_servers} did not describe topic {topic} ({e.args[0].str()}):"
            " does it exist? (`sensorpipe topics create`)"
        ) from e
