"""Configuration precedence: flag > environment > sensorpipe.toml > default; original names; secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sensorpipe.config import load_settings
from sensorpipe.config.settings import ConfigFileError, parse_assignments


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sensorpipe.toml"
    path.write_text(text)
    return path


def test_defaults_point_at_the_local_stack(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    settings = load_settings()
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.postgres.dsn(masked=True) == "postgresql://sensor_user:***@127.0.0.1:5432/sensordb"
    assert settings.s3.endpoint == "http://127.0.0.1:8333"
    assert settings.lake_uri == "s3a://sensordata/"


def test_each_layer_beats_the_one_below(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = _toml(tmp_path, "[mqtt]\nport = 1001\ntopic = 'from/file'\nqos = 0\n[kafka]\ntopic = 'file-topic'\n")
    clean_env.setenv("MQTT_PORT", "1002")
    clean_env.setenv("MQTT_TOPIC", "from/env")
    settings = load_settings({"mqtt": {"port": 1003}}, config_file=config)
    assert settings.mqtt.port == 1003  # flag beats env and file
    assert settings.mqtt.topic == "from/env"  # env beats file
    assert settings.mqtt.qos == 0  # file beats default
    assert settings.kafka.topic == "file-topic"
    assert settings.kafka.dlq_topic == "sensor-data-dlq"  # default


@pytest.mark.parametrize(
    ("env", "value", "read"),
    [
        ("MQTT_BROKER", "mosquitto", lambda s: s.mqtt.host),
        ("MQTT_PORT", "1884", lambda s: s.mqtt.port),
        ("MQTT_TOPIC", "sensors/data", lambda s: s.mqtt.topic),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka:29092", lambda s: s.kafka.bootstrap_servers),
        ("KAFKA_TOPIC", "sensor-data-2", lambda s: s.kafka.topic),
        ("SPARK_MASTER", "spark://spark-master:7077", lambda s: s.spark.master),
        ("POSTGRES_HOST", "timescaledb", lambda s: s.postgres.host),
        ("POSTGRES_PORT", "5433", lambda s: s.postgres.port),
        ("POSTGRES_DB", "iot", lambda s: s.postgres.database),
        ("POSTGRES_USER", "iot_user", lambda s: s.postgres.user),
        ("POSTGRES_PASSWORD", "pw", lambda s: s.postgres.password.get_secret_value()),
        ("MINIO_ENDPOINT", "http://minio:9000", lambda s: s.s3.endpoint),
        ("MINIO_ACCESS_KEY", "minioadmin", lambda s: s.s3.access_key),
        ("MINIO_SECRET_KEY", "minio-secret", lambda s: s.s3.secret_key.get_secret_value()),
        ("MINIO_BUCKET", "lake", lambda s: s.s3.bucket),
    ],
)
def test_original_stack_names_are_honoured(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, env: str, value: str, read: object
) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv(env, value)
    settings = load_settings()
    assert callable(read)
    assert str(read(settings)) == value


def test_own_name_wins_over_original_name(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv("MQTT_PORT", "1884")
    clean_env.setenv("SENSORPIPE_MQTT_PORT", "1885")
    assert load_settings().mqtt.port == 1885


def test_minio_endpoint_without_scheme_gets_http(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv("MINIO_ENDPOINT", "minio:9000")
    settings = load_settings()
    assert settings.s3.endpoint == "http://minio:9000"
    assert settings.s3.host_port == ("minio", 9000)


def test_toml_in_working_directory_is_read(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _toml(tmp_path, "[postgres]\ndatabase = 'fromcwd'\n")
    clean_env.chdir(tmp_path)
    assert load_settings().postgres.database == "fromcwd"


def test_config_file_from_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    other = tmp_path / "other.toml"
    other.write_text("[kafka]\npartitions = 12\n")
    clean_env.setenv("SENSORPIPE_CONFIG", str(other))
    assert load_settings().kafka.partitions == 12


def test_missing_config_file_is_named(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"nope\.toml does not exist"):
        load_settings(config_file=tmp_path / "nope.toml")


def test_typo_in_config_file_is_rejected(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = _toml(tmp_path, "[mqtt]\nprot = 1884\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(config_file=config)


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.mqtt.port = 1  # type: ignore[misc]


def test_set_flags_parse_into_sections() -> None:
    assert parse_assignments(["mqtt.port=1884", "s3.bucket=lake"]) == {
        "mqtt": {"port": "1884"},
        "s3": {"bucket": "lake"},
    }
    with pytest.raises(ValueError, match=r"SECTION\.FIELD=VALUE"):
        parse_assignments(["mqtt.nonsense=1"])


def test_lake_local_uses_a_directory_under_home(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings({"stack": {"home": tmp_path / "h"}, "lake": {"backend": "local"}})
    assert settings.lake_uri == (tmp_path / "h" / "lake").as_uri()


def test_the_qos_comes_from_the_environment_as_text(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SENSORPIPE_MQTT_QOS", "0")
    assert load_settings().mqtt.qos == 0
    clean_env.setenv("SENSORPIPE_MQTT_QOS", "3")
    with pytest.raises(ValidationError, match=r"mqtt\.qos"):
        load_settings()
