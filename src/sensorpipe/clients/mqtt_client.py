"""MQTT clients built one way from settings, and errors that say what to do."""

from __future__ import annotations

import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from sensorpipe.config import MqttSettings
from sensorpipe.errors import SensorpipeError


class MqttError(SensorpipeError):
    """The MQTT broker could not be reached or refused us; the message says why and what to do."""


def make_client(settings: MqttSettings, client_id: str, *, clean_session: bool = True) -> mqtt.Client:
    """A paho client (MQTT 3.1.1) with the configured credentials; `clean_session=False` keeps a session."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean_session
    )
    return _with_credentials(client, settings)


def make_v5_client(settings: MqttSettings, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    """A paho MQTT v5 client: session expiry, receive maximum and shared subscriptions are v5 features.

    `manual_ack=True` leaves every QoS 1 acknowledgement to the caller (`client.ack`).
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    return _with_credentials(client, settings)


def _with_credentials(client: mqtt.Client, settings: MqttSettings) -> mqtt.Client:
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    return client


def connect_error(host: str, port: int, error: OSError) -> str:
    """What a failed TCP connect to the broker means for the user, and what to do."""
    if isinstance(error, ConnectionRefusedError):
        return f"MQTT broker at {host}:{port} refused the connection: is `sensorpipe stack up` running?"
    return f"MQTT broker at {host}:{port} is unreachable ({error}): check mqtt.host and mqtt.port"


def refused_login(host: str, port: int, reason: ReasonCode) -> str:
    return (
        f"MQTT broker at {host}:{port} refused the login ({reason}): check mqtt.username/mqtt.password"
        " (a secure stack home keeps sensorpipe's own in <home>/secrets/credentials.json)"
    )


def refused_publish(settings: MqttSettings, topic: str, reason: ReasonCode) -> str:
    """A QoS 1/2 publish the broker's ACL denied (MQTT v5 says so in the PUBACK; v3.1.1 cannot)."""
    return (
        f"MQTT broker at {settings.host}:{settings.port} refused a message of {settings.username or 'this client'}"
        f" on {topic} ({reason}): a sensor may publish on its own topic only; a new sensor needs its own login"
        " (`sensorpipe stack sensor add ID`)"
    )


def connect(client: mqtt.Client, host: str, port: int, keepalive_s: int = 30, timeout_s: float = 5.0) -> None:
    """Connect and wait for the broker's CONNACK, driving the network loop ourselves."""
    outcome: dict[str, ReasonCode] = {}

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        outcome["reason"] = reason

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=keepalive_s)
    except OSError as e:
        raise MqttError(connect_error(host, port, e)) from e
    deadline = time.monotonic() + timeout_s
    while "reason" not in outcome:
        if time.monotonic() > deadline:
            client.disconnect()
            raise MqttError(f"MQTT broker at {host}:{port} accepted TCP but sent no CONNACK within {timeout_s:.0f}s")
        client.loop(timeout=0.05)
    if outcome["reason"].is_failure:
        client.disconnect()
        raise MqttError(refused_login(host, port, outcome["reason"]))


def probe_connect(host: str, port: int, settings: MqttSettings) -> str:
    """One MQTT CONNECT/CONNACK exchange, the health check of the broker."""
    client = make_client(settings, f"sensorpipe-probe-{uuid.uuid4().hex[:8]}")
    connect(client, host, port, timeout_s=2.0)
    client.disconnect()
    return "CONNACK accepted"
