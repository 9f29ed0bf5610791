"""Configuration: one frozen settings object built from flags, environment, `sensorpipe.toml` and defaults."""

from sensorpipe.config.settings import (
    KafkaSettings,
    MqttSettings,
    PostgresSettings,
    S3Settings,
    Settings,
    SparkSettings,
    StackSettings,
    load_settings,
)

__all__ = [
    "KafkaSettings",
    "MqttSettings",
    "PostgresSettings",
    "S3Settings",
    "Settings",
    "SparkSettings",
    "StackSettings",
    "load_settings",
]
