"""Every environment variable sensorpipe reads, in one place.

Each setting `<section>.<field>` is read from `SENSORPIPE_<SECTION>_<FIELD>`; the names of the
original hand-built stack (`MQTT_BROKER`, `KAFKA_BOOTSTRAP_SERVERS`, `MINIO_ENDPOINT`, ...) are
honoured too and listed here. When both are set, the `SENSORPIPE_` name wins.
"""

CONFIG_FILE_ENV = "SENSORPIPE_CONFIG"
DEFAULT_CONFIG_FILE = "sensorpipe.toml"

LEGACY_ENV_NAMES: dict[tuple[str, str], str] = {
    ("mqtt", "host"): "MQTT_BROKER",
    ("mqtt", "port"): "MQTT_PORT",
    ("mqtt", "topic"): "MQTT_TOPIC",
    ("kafka", "bootstrap_servers"): "KAFKA_BOOTSTRAP_SERVERS",
    ("kafka", "topic"): "KAFKA_TOPIC",
    ("spark", "master"): "SPARK_MASTER",
    ("postgres", "host"): "POSTGRES_HOST",
    ("postgres", "port"): "POSTGRES_PORT",
    ("postgres", "database"): "POSTGRES_DB",
    ("postgres", "user"): "POSTGRES_USER",
    ("postgres", "password"): "POSTGRES_PASSWORD",
    ("s3", "endpoint"): "MINIO_ENDPOINT",
    ("s3", "access_key"): "MINIO_ACCESS_KEY",
    ("s3", "secret_key"): "MINIO_SECRET_KEY",
    ("s3", "bucket"): "MINIO_BUCKET",
}


def env_names(section: str, field: str) -> tuple[str, ...]:
    """Names that set `section.field`, highest precedence first."""
    own = f"SENSORPIPE_{section}_{field}".upper()
    legacy = LEGACY_ENV_NAMES.get((section, field))
    return (own, legacy) if legacy else (own,)
