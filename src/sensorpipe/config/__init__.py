"""Configuration: one frozen settings object built from flags, environment, `sensorpipe.toml` and defaults."""

from sensorpipe.config.load import load_settings
from sensorpipe.config.settings import (
    BridgeSettings,
    KafkaSettings,
    MonitoringSettings,
    MqttSettings,
    PostgresSettings,
    ReadingsSettings,
    S3Settings,
    Settings,
    SparkSettings,
    StackSettings,
    StreamSettings,
    TimescaleSettings,
)

__all__ = [
    "BridgeSettings",
    "KafkaSettings",
    "MonitoringSettings",
    "MqttSettings",
    "PostgresSettings",
    "ReadingsSettings",
    "S3Settings",
    "Settings",
    "SparkSettings",
    "StackSettings",
    "StreamSettings",
    "TimescaleSettings",
    "load_settings",
]
