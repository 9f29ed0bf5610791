"""Credentials of a secure stack home (`sensorpipe stack up --secure`), and the settings that use them.

The file `<home>/secrets/credentials.json` (mode 0600, in a 0700 directory) makes a home secure, for good:
every later `stack up`, `run` or client command on that home finds it and uses it, so nothing silently
drops back to anonymous MQTT or plaintext Kafka. It holds random passwords: one MQTT login per sensor (its
username is its sensor id), the bridge's read-only login, the login of `stack check`, and the Kafka SASL
users. Settings given explicitly (flags, environment, `sensorpipe.toml`) always win over it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from sensorpipe.errors import SensorpipeError

if TYPE_CHECKING:  # settings.py applies `with_stack_credentials` when it loads: no import cycle at run time
    from sensorpipe.config.settings import MqttSettings, Settings

SECRETS_DIR = "secrets"
CREDENTIALS_FILE = "credentials.json"
BRIDGE_USER = "sensorpipe-bridge"
"""Reads the sensors' topics and nothing else: the bridge, `doctor`, health probes, `tail mqtt`."""
CHECK_USER = "sensorpipe-check"
"""Publishes and reads on `sensorpipe/roundtrip/#` only: the MQTT round trip of `stack check`."""
SERVICE_USERS = (BRIDGE_USER, CHECK_USER)
KAFKA_USER = "sensorpipe"
"""The pipeline's SASL user on the local Kafka broker."""
KAFKA_BROKER_USER = "broker"
"""The broker's own SASL user (inter-broker traffic on the same listener)."""
_LOCAL_HOSTS = {"127.0.0.1", "localhost"}
_SENSOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CredentialsError(SensorpipeError):
    """A credential cannot be made or used; the message says why and what to do."""


@dataclass
class Credentials:
    """Passwords by username: MQTT logins (sensors and sensorpipe's own clients) and Kafka SASL users."""

    mqtt: dict[str, str] = field(default_factory=dict)
    kafka: dict[str, str] = field(default_factory=dict)

    def sensors(self) -> list[str]:
        return sorted(user for user in self.mqtt if user not in SERVICE_USERS)


def credentials_file(home: Path) -> Path:
    return home / SECRETS_DIR / CREDENTIALS_FILE


def load_credentials(home: Path) -> Credentials | None:
    """The home's credentials, or None when the home is not secure."""
    path = credentials_file(home)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Credentials(mqtt=dict(data["mqtt"]), kafka=dict(data["kafka"]))


def save_credentials(home: Path, credentials: Credentials) -> None:
    """Write atomically, readable by the owner only (0600 file, 0700 directory)."""
    path = credentials_file(home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    write_private(path, json.dumps({"mqtt": credentials.mqtt, "kafka": credentials.kafka}, indent=2, sort_keys=True))


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a file only its owner can read (0600), whatever mode the old one had."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(temporary, path)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def secure_home(home: Path) -> Credentials:
    """Make the home secure (idempotent): the service logins and Kafka users, each with a random password."""
    credentials = load_credentials(home) or Credentials()
    for user in SERVICE_USERS:
        credentials.mqtt.setdefault(user, new_password())
    for user in (KAFKA_USER, KAFKA_BROKER_USER):
        credentials.kafka.setdefault(user, new_password())
    save_credentials(home, credentials)
    return credentials


def check_sensor_id(sensor_id: str) -> None:
    """A sensor id is its MQTT username and a level of its topic: no `/`, `+`, `#`, `:` or spaces."""
    if sensor_id in SERVICE_USERS:
        raise CredentialsError(f"{sensor_id} is the login of sensorpipe itself: choose another sensor id")
    if not _SENSOR_ID.fullmatch(sensor_id):
        raise CredentialsError(
            f"sensor id {sensor_id!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            " (it is the MQTT username and a level of the sensor's topic)"
        )


def add_sensors(home: Path, sensor_ids: list[str]) -> tuple[Credentials, list[str]]:
    """Give each sensor a login unless it has one; returns the credentials and the ids that are new."""
    credentials = load_credentials(home)
    if credentials is None:
        raise CredentialsError(
            f"the stack home {home} is not secure: start it with `sensorpipe stack up --secure` first"
        )
    for sensor_id in sensor_ids:
        check_sensor_id(sensor_id)
    added = [sensor_id for sensor_id in dict.fromkeys(sensor_ids) if sensor_id not in credentials.mqtt]
    for sensor_id in added:
        credentials.mqtt[sensor_id] = new_password()
    if added:
        save_credentials(home, credentials)
    return credentials, added


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


__all__ = [
    "BRIDGE_USER",
    "CHECK_USER",
    "KAFKA_BROKER_USER",
    "KAFKA_USER",
    "Credentials",
    "CredentialsError",
    "add_sensors",
    "check_sensor_id",
    "credentials_file",
    "load_credentials",
    "mqtt_login",
    "secure_home",
    "signs_in_per_sensor",
    "with_stack_credentials",
    "write_private",
]
