"""Problem 9: the MQTT broker accepts a connection with the configured credentials."""

from __future__ import annotations

import uuid

from sensorpipe.clients.mqtt_client import MqttError, connect, make_client
from sensorpipe.config import Settings
from sensorpipe.doctor.check import Check, failed, passed, split_fix


def check_mqtt_login(settings: Settings) -> Check:
    name = "mqtt login"
    mqtt = settings.mqtt
    client = make_client(mqtt, f"sensorpipe-doctor-{uuid.uuid4().hex[:8]}", clean_session=True)
    try:
        connect(client, mqtt.host, mqtt.port, timeout_s=5.0)
    except MqttError as e:
        cause, fix = split_fix(str(e))
        if "refused the login" in cause:
            fix = "check mqtt.username/mqtt.password against the broker's password file"
        elif "refused the connection" in cause:
            fix = "start the broker (`sensorpipe stack up`) or set mqtt.host/mqtt.port (MQTT_BROKER/MQTT_PORT)"
        return failed(name, cause, fix)
    client.disconnect()
    who = f"as {mqtt.username}" if mqtt.username else "anonymously"
    return passed(name, f"{mqtt.url} accepted a clean session {who}")


__all__ = ["check_mqtt_login"]
