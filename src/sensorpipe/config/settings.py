"""Typed, frozen settings per component, composed into one `Settings`.

Precedence, highest first: command-line flags (passed to `load_settings` as overrides), environment
variables (see `sensorpipe.config.env`), the optional `sensorpipe.toml`, then defaults that point at
the local stack started by `sensorpipe stack up`.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sensorpipe.config.env import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, env_names
from sensorpipe.errors import SensorpipeError

LOOPBACK = "127.0.0.1"
_INTERVAL = re.compile(r"\d+ (second|minute|hour|day|week|month|year)s?")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sensorpipe"


class StackSettings(_Section):
    """Where the local stack keeps its state, and how much memory its JVM gets."""

    home: Path = Field(Path(".sensorpipe"), description="state of the local stack: data, logs, pid files")
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="resolved JVM jars (default: $XDG_CACHE_HOME or ~/.cache, /sensorpipe)",
    )
    bind_host: Literal["127.0.0.1"] = Field("127.0.0.1", description="every local service listens here only")
    kafka_heap: str = Field("512m", description="-Xmx of the local Kafka broker")
    start_timeout_s: float = Field(90.0, gt=0, description="how long `stack up` waits for one service")


class MqttSettings(_Section):
    """The MQTT broker the sensors publish to and the bridge reads from, and how to log in."""

    host: str = Field(LOOPBACK, description="MQTT broker host")
    port: int = Field(1883, ge=1, le=65535, description="MQTT broker port")
    topic: str = Field("sensors/+/data", description="subscription of the bridge: sensors/<id>/data")
    legacy_topic: str | None = Field(
        "sensors/data", description="also subscribed by the bridge: the original stack's topic; empty to skip"
    )
    qos: Literal[0, 1, 2] = Field(1, description="QoS of publisher and bridge (1: nothing lost)")
    username: str | None = Field(None, description="MQTT login, when the broker requires one")
    password: SecretStr | None = Field(None, description="MQTT password")
    keepalive_s: int = Field(30, ge=5, description="MQTT keep-alive interval")

    @field_validator("qos", mode="before")
    @classmethod
    def _qos_from_text(cls, value: object) -> object:
        """Environment variables and TOML strings say `"1"`; a Literal of ints accepts no string by itself."""
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


class ReadingsSettings(_Section):
    """The data contract's defaults, shared by the bridge and the stream job."""

    default_sensor_id: str = Field(
        "default", min_length=1, description="sensor id of a reading that names none, on a topic that names none"
    )


class BridgeSettings(_Section):
    """The MQTT → Kafka bridge: one persistent MQTT session, acknowledged only after Kafka confirmed."""

    client_id: str = Field(
        "sensorpipe-bridge", min_length=1, description="MQTT client id; fixed, so the broker keeps the session"
    )
    share_group: str | None = Field(
        None, description="MQTT v5 shared subscription group: bridges in one group split the load"
    )
    max_in_flight: int = Field(
        2000, ge=1, description="messages received but not yet confirmed by Kafka before MQTT is paused"
    )
    linger_ms: int = Field(5, ge=0, description="Kafka producer linger.ms: batching against latency")
    metrics_host: str = Field(LOOPBACK, description="address of the metrics endpoint (0.0.0.0 inside a container)")
    metrics_port: int | None = Field(9310, ge=1, le=65535, description="Prometheus metrics port; unset: off")
    status_interval_s: float = Field(5.0, gt=0, description="seconds between the bridge's status lines")


class KafkaSettings(_Section):
    """The Kafka brokers, the topics sensorpipe creates, and how its clients authenticate."""

    bootstrap_servers: str = Field(f"{LOOPBACK}:9092", description="Kafka brokers, comma-separated host:port")
    topic: str = Field("sensor-data", description="readings, keyed by sensor_id")
    dlq_topic: str = Field("sensor-data-dlq", description="dead-letter topic for invalid records")
    partitions: int = Field(3, ge=1, description="partitions of the topics sensorpipe creates")
    replication_factor: int = Field(1, ge=1, description="replication of the topics sensorpipe creates")
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1, description="retention of the topics (-1: forever)")
    controller_port: int = Field(9093, ge=1, le=65535, description="KRaft controller of the local broker")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how clients talk to the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism with a SASL_* security_protocol"
    )
    sasl_username: str | None = Field(None, description="SASL user, with a SASL_* security_protocol")
    sasl_password: SecretStr | None = Field(None, description="SASL password of sasl_username")
    ssl_ca_location: Path | None = Field(
        None, description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL)"
    )

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def first_host_port(self) -> tuple[str, int]:
        host, _, port = self.bootstrap_servers.split(",")[0].strip().rpartition(":")
        return host, int(port)


class SparkSettings(_Section):
    """Where the stream job runs and what its Spark session gets."""

    master: str = Field("local[*]", description="Spark master URL: local[*], spark://host:7077, k8s://...")
    driver_memory: str = Field("1g", description="spark.driver.memory")
    shuffle_partitions: int = Field(4, ge=1, description="spark.sql.shuffle.partitions")
    ui_port: int | None = Field(None, description="Spark UI port on 127.0.0.1; unset: UI off")
    class_data_sharing: bool = Field(
        True,
        description="the driver JVM maps the classes its first start loaded from an archive in the cache"
        " (Java's CDS): later starts take about a third less time and CPU",
    )
    jars_on_workers: bool = Field(
        False,
        description="workers hold the pinned jars at the driver's paths (the sensorpipe image):"
        " put them on the executors' class path instead of shipping ~700 MB to each executor",
    )


class StreamSettings(_Section):
    """The Spark Structured Streaming job: trigger, checkpoints, late data, limits, metrics."""

    trigger: str = Field(
        "1 second", description="micro-batch interval of the readings (database, lake): file size against latency"
    )
    lake_aggregates_trigger: str = Field(
        "1 minute",
        description="how often final minutes (past the watermark) are written to the lake's agg_1m",
    )
    max_offsets_per_trigger: int | None = Field(
        200_000, ge=1, description="Kafka records per micro-batch at most; unset: no limit"
    )
    checkpoint_base: str | None = Field(
        None,
        description="checkpoints of the job's queries (default: <home>/checkpoints with a local master and a lake"
        " on S3, else <lake root>/_checkpoints, where a cluster's executors find them)",
    )
    watermark: str = Field(
        "2 minutes",
        description="how late a reading may be and still count in the lake's agg_1m, whose minutes are final"
        " after it (sensor_data_1m takes every stored reading, however late)",
    )
    max_payload_bytes: int = Field(
        262_144, ge=64, description="larger Kafka records are rejected (payload_too_large) before parsing"
    )
    metrics_host: str = Field(LOOPBACK, description="address of the job's metrics endpoint")
    metrics_port: int | None = Field(9311, ge=1, le=65535, description="Prometheus metrics port; unset: off")


class PostgresSettings(_Section):
    """The database `sensordb` and its three roles: owner (migrations), writer (stream job), reader (Grafana)."""

    host: str = Field(LOOPBACK, description="PostgreSQL/TimescaleDB host")
    port: int = Field(5432, ge=1, le=65535, description="PostgreSQL port")
    database: str = Field("sensordb", description="database of the pipeline")
    user: str = Field("sensor_user", description="role the pipeline logs in as")
    password: SecretStr = Field(SecretStr("sensor_password"), description="password of that role")
    writer_user: str = Field("sensor_writer", description="role of the stream job: insert/select on the data tables")
    writer_password: SecretStr = Field(SecretStr("sensor_writer_password"), description="password of writer_user")
    reader_user: str = Field("grafana_reader", description="read-only role for Grafana")
    reader_password: SecretStr = Field(SecretStr("grafana_reader_password"), description="password of reader_user")

    def dsn(self, *, masked: bool = False, role: Literal["owner", "writer", "reader"] = "owner") -> str:
        """libpq URL for the owner (`user`, migrations), the writer or the reader; `masked` hides the password."""
        user, password = {
            "owner": (self.user, self.password),
            "writer": (self.writer_user, self.writer_password),
            "reader": (self.reader_user, self.reader_password),
        }[role]
        secret = "***" if masked else quote(password.get_secret_value(), safe="")
        return f"postgresql://{quote(user, safe='')}:{secret}@{self.host}:{self.port}/{self.database}"


class TimescaleSettings(_Section):
    """TimescaleDB features, used where the extension is available (`db migrate` says which)."""

    mode: Literal["auto", "on", "off"] = Field(
        "auto", description="auto: use TimescaleDB when available; on: require it; off: plain PostgreSQL"
    )
    chunk_interval: str = Field("1 day", description="hypertable chunk interval of sensor_data")
    compress_after: str | None = Field("7 days", description="compress chunks older than this; empty: no compression")
    retention: str | None = Field(None, description="drop chunks older than this; empty: keep everything")

    @field_validator("chunk_interval", "compress_after", "retention")
    @classmethod
    def _interval(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A PostgreSQL interval such as `1 day` or `12 hours`; empty turns an optional policy off."""
        if not value:
            if info.field_name == "chunk_interval":
                raise ValueError("the chunk interval cannot be empty")
            return None
        if not _INTERVAL.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not an interval like '1 day', '12 hours' or '4 weeks'")
        return value.strip()


class S3Settings(_Section):
    """The S3 server and bucket of the lake (the local SeaweedFS, MinIO or AWS)."""

    endpoint: str = Field(
        f"http://{LOOPBACK}:8333", description="S3 endpoint (MinIO, SeaweedFS, AWS); http:// if no scheme"
    )
    access_key: str = Field("sensorpipe", description="S3 access key")
    secret_key: SecretStr = Field(SecretStr("sensorpipe-secret"), description="S3 secret key")
    bucket: str = Field("sensordata", description="bucket of the lake, created by `stack up`")
    region: str = Field("us-east-1", description="S3 signing region")

    @field_validator("endpoint")
    @classmethod
    def _with_scheme(cls, value: str) -> str:
        """The original stack wrote `minio:9000`; boto3 and S3A want a scheme."""
        return value if "://" in value else f"http://{value}"

    @property
    def host_port(self) -> tuple[str, int]:
        rest = self.endpoint.split("://", 1)[1].split("/", 1)[0]
        host, _, port = rest.rpartition(":")
        if not host:
            return rest, 443 if self.endpoint.startswith("https") else 80
        return host, int(port)


class LakeSettings(_Section):
    """The lake's Delta tables: where they live (the S3 bucket or a local directory), commits and upkeep."""

    backend: Literal["s3", "local"] = Field("s3", description="s3: the bucket of [s3]; local: a directory")
    local_dir: Path | None = Field(None, description="lake directory for backend=local (default: <home>/lake)")
    commit_interval_s: float = Field(
        60.0,
        gt=0,
        description="how often the stream job commits staged readings to the raw table: fewer, larger files"
        " against a fresher lake (the lake's agg_1m trails it by as much)",
    )
    maintenance_interval_s: float | None = Field(
        3600.0, gt=0, description="how often the stream job compacts, vacuums and prunes the tables; unset: never"
    )
    target_file_mb: int = Field(64, ge=1, description="file size compaction aims at")
    log_retention_days: int = Field(
        2,
        ge=1,
        description="how long each table keeps its log (time travel by version; an aggregates query stopped"
        " longer must start over): a longer log makes every commit slower",
    )
    vacuum_retention_hours: int = Field(
        168, ge=0, description="files a commit removed stay this long for readers of older snapshots"
    )
    retention_days: int | None = Field(
        None, ge=1, description="delete lake rows older than this many days; unset: keep everything"
    )


class MonitoringSettings(_Section):
    """What Prometheus scrapes and Grafana shows, and when their alerts fire (`grafana export`, `prometheus export`)."""

    prometheus_url: str = Field(f"http://{LOOPBACK}:9090", description="Prometheus as Grafana reaches it")
    bridge_targets: str | None = Field(
        None, description="host:port list Prometheus scrapes for bridges (default: bridge.metrics_host:port)"
    )
    stream_targets: str | None = Field(
        None, description="host:port list Prometheus scrapes for stream jobs (default: stream.metrics_host:port)"
    )
    scrape_interval_s: int = Field(15, ge=1, description="Prometheus scrape and rule evaluation interval")
    silent_sensor_minutes: int = Field(10, ge=1, description="alert when a sensor sent nothing for this long")
    max_dead_letters_per_s: float = Field(1.0, ge=0, description="alert when rejects per second exceed this (5 min)")
    max_latency_s: float = Field(10.0, gt=0, description="alert when end-to-end latency stays above this (5 min)")
    max_kafka_lag: int = Field(500_000, ge=1, description="alert when the stream job's Kafka lag stays above this")


_SECTIONS: dict[str, type[_Section]] = {
    "stack": StackSettings,
    "mqtt": MqttSettings,
    "readings": ReadingsSettings,
    "bridge": BridgeSettings,
    "kafka": KafkaSettings,
    "spark": SparkSettings,
    "stream": StreamSettings,
    "postgres": PostgresSettings,
    "timescale": TimescaleSettings,
    "s3": S3Settings,
    "lake": LakeSettings,
    "monitoring": MonitoringSettings,
}

_config_file: ContextVar[Path | None] = ContextVar("sensorpipe_config_file", default=None)


class _EnvSource(PydanticBaseSettingsSource):
    """`SENSORPIPE_<SECTION>_<FIELD>` and the original stack's names; empty values count as unset."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for section, model in _SECTIONS.items():
            for name in model.model_fields:
                for env in env_names(section, name):
                    value = os.environ.get(env)
                    if value:
                        found.setdefault(section, {})[name] = value
                        break
        return found


class Settings(BaseSettings):
    """Everything sensorpipe needs to know, passed around as one object."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    stack: StackSettings = StackSettings()
    mqtt: MqttSettings = MqttSettings()
    readings: ReadingsSettings = ReadingsSettings()
    bridge: BridgeSettings = BridgeSettings()
    kafka: KafkaSettings = KafkaSettings()
    spark: SparkSettings = SparkSettings()
    stream: StreamSettings = StreamSettings()
    postgres: PostgresSettings = PostgresSettings()
    timescale: TimescaleSettings = TimescaleSettings()
    s3: S3Settings = S3Settings()
    lake: LakeSettings = LakeSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, _EnvSource(settings_cls)]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def home(self) -> Path:
        return self.stack.home.resolve()

    @property
    def lake_dir(self) -> Path:
        """Directory of the lake when `lake.backend` is local."""
        return (self.lake.local_dir or self.home / "lake").resolve()

    @property
    def lake_uri(self) -> str:
        """Root of the lake as Spark sees it: `s3a://bucket/` or `file:///abs/dir`."""
        if self.lake.backend == "local":
            return self.lake_dir.as_uri()
        return f"s3a://{self.s3.bucket}/"


class ConfigFileError(SensorpipeError):
    """The configuration file named by the user does not exist."""


def resolve_config_file(explicit: Path | None) -> Path | None:
    """`--config` beats `SENSORPIPE_CONFIG`, which beats `./sensorpipe.toml` when that exists."""
    if explicit is None and os.environ.get(CONFIG_FILE_ENV):
        explicit = Path(os.environ[CONFIG_FILE_ENV])
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigFileError(f"configuration file {explicit} does not exist")
        return explicit
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def build_settings(overrides: dict[str, dict[str, Any]] | None, config_file: Path | None) -> Settings:
    """Settings from `overrides` (flags), environment, the configuration file and defaults, in that order."""
    token = _config_file.set(resolve_config_file(config_file))
    try:
        return Settings.model_validate(overrides or {})
    finally:
        _config_file.reset(token)


def parse_assignments(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """Turn `--set mqtt.port=1884` flags into nested overrides, naming the bad one when malformed."""
    overrides: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or section not in _SECTIONS or name not in _SECTIONS[section].model_fields:
            known = ", ".join(sorted(_SECTIONS))
            raise ValueError(f"--set {pair!r}: expected SECTION.FIELD=VALUE with SECTION one of {known}")
        overrides.setdefault(section, {})[name] = value
    return overrides


def merge_overrides(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Later layers win, field by field."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    return merged


def describe_fields() -> list[tuple[str, str, str, str]]:
    """(setting, default, env names, description) for every setting, for docs and `config show`."""
    rows = []
    for section, model in _SECTIONS.items():
        for name, info in model.model_fields.items():
            default = "" if info.default_factory or info.default is None else str(info.default)
            if isinstance(info.default, SecretStr):
                default = "(secret)"
            rows.append((f"{section}.{name}", default, ", ".join(env_names(section, name)), info.description or ""))
    return rows
