"""The secure home's logins applied to settings: what `load_settings` fills in where nothing was given."""

from __future__ import annotations

from pydantic import SecretStr

from sensorpipe.config.credentials import BRIDGE_USER, KAFKA_USER, Credentials, CredentialsError, load_credentials
from sensorpipe.config.settings import MqttSettings, Settings

_LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _local(host: str) -> bool:
    return host in _LOCAL_HOSTS


def with_stack_credentials(settings: Settings) -> Settings:
    """The settings, with the secure home's logins filled in where nothing explicit was given.

    MQTT: the bridge's read-only login (a sensor logs in as itself: see `mqtt_login`). Kafka: SASL_PLAINTEXT
    with the pipeline's user, when the broker is the local one.
    """
    credentials = load_credentials(settings.home)
    if credentials is None:
        return settings
    update: dict[str, object] = {}
    mqtt, kafka = settings.mqtt, settings.kafka
    if "username" not in mqtt.model_fields_set and _local(mqtt.host):
        login = {"username": BRIDGE_USER, "password": SecretStr(credentials.mqtt[BRIDGE_USER])}
        update["mqtt"] = mqtt.model_copy(update=_unset(login, mqtt.model_fields_set))
    if "security_protocol" not in kafka.model_fields_set and _local(kafka.first_host_port[0]):
        sasl = {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_username": KAFKA_USER,
            "sasl_password": SecretStr(credentials.kafka[KAFKA_USER]),
        }
        update["kafka"] = kafka.model_copy(update=_unset(sasl, kafka.model_fields_set))
    return settings.model_copy(update=update) if update else settings


def _unset(values: dict[str, object], given: set[str]) -> dict[str, object]:
    """The values whose field was not given explicitly: a flag such as `--set kafka.sasl_password=...` wins."""
    return {name: value for name, value in values.items() if name not in given}


def signs_in_per_sensor(settings: Settings) -> bool:
    """Whether publishers must log in as their sensor: a secure home whose login sensorpipe fills in."""
    return settings.mqtt.username == BRIDGE_USER and load_credentials(settings.home) is not None


def mqtt_login(settings: Settings, username: str, credentials: Credentials | None = None) -> MqttSettings:
    """`settings.mqtt` logged in as `username` of the secure home (unchanged when the home is not secure).

    An explicitly configured `mqtt.username` wins: the user knows their broker.
    """
    credentials = credentials or load_credentials(settings.home)
    mqtt = settings.mqtt
    if credentials is None or not _local(mqtt.host) or mqtt.username not in (None, BRIDGE_USER):
        return mqtt
    if username not in credentials.mqtt:
        raise CredentialsError(f"no MQTT login for {username}: `sensorpipe stack sensor add {username}`")
    return mqtt.model_copy(update={"username": username, "password": SecretStr(credentials.mqtt[username])})


__all__ = ["mqtt_login", "signs_in_per_sensor", "with_stack_credentials"]
