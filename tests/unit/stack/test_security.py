"""Security settings: one source for librdkafka and Spark, a secure home's logins, Mosquitto's files."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from sensorpipe.clients.kafka_client import client_config, spark_kafka_options
from sensorpipe.config import KafkaSettings, MqttSettings, load_settings
from sensorpipe.config.credentials import (
    BRIDGE_USER,
    CHECK_USER,
    KAFKA_USER,
    Credentials,
    CredentialsError,
    add_sensors,
    credentials_file,
    secure_home,
)
from sensorpipe.config.logins import mqtt_login
from sensorpipe.simulator.publisher import Job
from sensorpipe.simulator.readings import FleetSpec
from sensorpipe.stack.kafka import broker_jaas
from sensorpipe.stack.mosquitto import acl, password_line

SASL = KafkaSettings(
    bootstrap_servers="kafka:29092",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="pipe",
    sasl_password=SecretStr('p"w\\d'),
    ssl_ca_location=Path("/etc/ca.pem"),
)


def test_librdkafka_and_spark_get_the_same_brokers_and_security() -> None:
    rd = client_config(SASL)
    spark = spark_kafka_options(SASL)
    assert rd["bootstrap.servers"] == spark["kafka.bootstrap.servers"] == "kafka:29092"
    assert rd["security.protocol"] == spark["kafka.security.protocol"] == "SASL_SSL"
    assert rd["sasl.mechanism"] == spark["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert (rd["sasl.username"], rd["sasl.password"]) == ("pipe", 'p"w\\d')
    assert spark["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="pipe" password="p\\"w\\\\d";'
    )
    assert rd["ssl.ca.location"] == spark["kafka.ssl.truststore.location"] == "/etc/ca.pem"
    assert spark["kafka.ssl.truststore.type"] == "PEM"


def test_plaintext_has_no_login() -> None:
    assert spark_kafka_options(KafkaSettings()) == {
        "kafka.bootstrap.servers": "127.0.0.1:9092",
        "kafka.security.protocol": "PLAINTEXT",
    }
    assert not any(key.startswith(("sasl.", "ssl.")) for key in client_config(KafkaSettings()))


def test_plain_mechanism_uses_the_plain_login_module() -> None:
    plain = SASL.model_copy(update={"sasl_mechanism": "PLAIN", "sasl_password": SecretStr("x")})
    assert spark_kafka_options(plain)["kafka.sasl.jaas.config"].startswith(
        "org.apache.kafka.common.security.plain.PlainLoginModule required"
    )


def test_the_sasl_password_is_a_secret_in_every_dump(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SENSORPIPE_KAFKA_SASL_PASSWORD", "hunter2-kafka")
    clean_env.setenv("SENSORPIPE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    settings = load_settings()
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "hunter2-kafka"
    assert "hunter2-kafka" not in json.dumps(settings.model_dump(mode="json")) + repr(settings)


def _secure(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    clean_env.chdir(tmp_path)
    secure_home(tmp_path / ".sensorpipe")
    return tmp_path / ".sensorpipe"


def test_a_secure_home_fills_in_logins_unless_given(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    home = _secure(tmp_path, clean_env)
    assert stat.S_IMODE(credentials_file(home).stat().st_mode) == 0o600
    secrets = json.loads(credentials_file(home).read_text())
    settings = load_settings()
    assert settings.mqtt.username == BRIDGE_USER
    assert settings.mqtt.password == SecretStr(secrets["mqtt"][BRIDGE_USER])
    assert (settings.kafka.security_protocol, settings.kafka.sasl_username) == ("SASL_PLAINTEXT", KAFKA_USER)
    assert settings.kafka.sasl_password == SecretStr(secrets["kafka"][KAFKA_USER])
    given = load_settings({"kafka": {"sasl_password": "mine"}, "mqtt": {"username": "me", "password": "pw"}})
    assert given.kafka.sasl_password == SecretStr("mine")  # an explicit setting wins, field by field
    assert (given.mqtt.username, given.mqtt.password) == ("me", SecretStr("pw"))
    remote = load_settings({"kafka": {"bootstrap_servers": "kafka:29092"}, "mqtt": {"host": "mosquitto"}})
    assert remote.kafka.security_protocol == "PLAINTEXT" and remote.mqtt.username is None  # not our brokers


def test_logins_of_sensors_and_of_stack_check(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    home = _secure(tmp_path, clean_env)
    _, added = add_sensors(home, ["sensor-001", "sensor-002", "sensor-001"])
    assert added == ["sensor-001", "sensor-002"]
    assert add_sensors(home, ["sensor-002"])[1] == []
    settings = load_settings()
    assert mqtt_login(settings, "sensor-002").username == "sensor-002"
    assert mqtt_login(settings, CHECK_USER).username == CHECK_USER
    with pytest.raises(CredentialsError, match="sensorpipe stack sensor add sensor-404"):
        mqtt_login(settings, "sensor-404")
    for bad in ("a/b", "+", "#", "", "x:y", BRIDGE_USER):
        with pytest.raises(CredentialsError):
            add_sensors(home, [bad])


def test_a_home_that_is_not_secure_has_no_sensor_logins(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="stack up --secure"):
        add_sensors(tmp_path, ["sensor-001"])


def test_password_lines_are_mosquittos_pbkdf2_sha512_format() -> None:
    user, _, rest = password_line("sensor-001", "secret").partition(":")
    _, kind, iterations, salt, digest = rest.split("$")
    assert (user, kind, iterations) == ("sensor-001", "7", "101")
    expected = hashlib.pbkdf2_hmac("sha512", b"secret", base64.b64decode(salt), 101)
    assert base64.b64decode(digest) == expected


def test_the_acl_lets_sensors_write_their_topic_and_the_bridge_only_read() -> None:
    rules = acl(MqttSettings(topic="plant/+/data", legacy_topic="plant/data")).splitlines()
    assert "pattern write plant/%u/data" in rules
    bridge = rules[rules.index(f"user {BRIDGE_USER}") + 1 : rules.index(f"user {CHECK_USER}")]
    assert [rule for rule in bridge if rule and not rule.startswith("#")] == [
        "topic read plant/+/data",
        "topic read plant/data",
        f"topic deny plant/{BRIDGE_USER}/data",
    ]


def test_the_broker_knows_every_kafka_user() -> None:
    jaas = broker_jaas(Credentials(kafka={"broker": "b", "sensorpipe": "s"}))
    assert 'username="broker" password="b"' in jaas and 'user_broker="b"' in jaas and 'user_sensorpipe="s"' in jaas
    assert jaas.endswith(";")


def test_each_simulated_sender_is_one_process() -> None:
    assert Job(FleetSpec(3), processes=3).sender_of(2) == "sensor-003"
    assert Job(FleetSpec(6, batch=10), processes=2).sender_of(1) == "gw-02"
    with pytest.raises(ValueError, match="--processes equal to --sensors"):
        Job(FleetSpec(3), processes=1).sender_of(0)
