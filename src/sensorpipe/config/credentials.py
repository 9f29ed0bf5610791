"""Credentials of a secure stack home (`sensorpipe stack up --secure`); `config.logins` applies them.

The file `<home>/secrets/credentials.json` (mode 0600, in a 0700 directory) makes a home secure, for good:
every later `stack up`, `run` or client command on that home finds it and uses it, so nothing silently
drops back to anonymous MQTT or plaintext Kafka. It holds random passwords: one MQTT login per sensor (its
username is its sensor id), the bridge's read-only login, the login of `stack check`, and the Kafka SASL
users. Settings given explicitly (flags, environment, `sensorpipe.toml`) always win over it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sensorpipe.errors import SensorpipeError

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
    """The home's credentials, or None when the home is not secure.

    Every settings load asks, so the file is parsed once per change (its mtime and size), not per call.
    """
    path = credentials_file(home)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    data = _parsed(path, stat.st_mtime_ns, stat.st_size)
    return Credentials(mqtt=dict(data["mqtt"]), kafka=dict(data["kafka"]))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, _mtime_ns: int, _size: int) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(path.read_text())
    return data


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
    "secure_home",
    "write_private",
]
