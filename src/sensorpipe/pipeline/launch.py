"""What `sensorpipe run` starts, in which order, and how it knows each step is done.

Set-up first (Java and jars, the local stack, migrations, topics, the bucket), so a broken environment
is one clear message before any child starts. Then the stream job (its JVM takes longest), the bridge,
and, once the broker confirmed the bridge's subscription, the simulator: a reading published before that
would have no subscriber and be gone. Stopping goes the other way round with one addition: before the
stream job stops, it is given the time to store everything the bridge forwarded. `sequence.RunSequence`
carries this order out for both `sensorpipe run` and `sensorpipe bench`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from sensorpipe.clients.kafka_client import KafkaError, watermarks
from sensorpipe.clients.topics import create_topics
from sensorpipe.config import Settings
from sensorpipe.doctor.runtime import check_jars, check_java
from sensorpipe.errors import SensorpipeError
from sensorpipe.monitoring.scrape import ScrapeError, scrape
from sensorpipe.pipeline.supervisor import ChildSpec
from sensorpipe.stack import Stack, StackError
from sensorpipe.stack.manager import Report
from sensorpipe.storage.errors import StorageError
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.s3 import S3Error, ensure_bucket
from sensorpipe.stream.checkpoint_log import (
    UnreadableCheckpointError,
    entry_offsets,
    read_checkpoint,
    records_behind,
)
from sensorpipe.stream.runner import STOP_GRACE_S

STREAM, BRIDGE, SIMULATOR = "stream", "bridge", "simulator"
STOP_ORDER = (SIMULATOR, BRIDGE, STREAM)
"""Producers first: what the simulator published, the bridge forwards; what it forwarded, the job stores."""


class LaunchError(SensorpipeError):
    """The pipeline cannot start; the message names the cause and the fix."""


@dataclass(frozen=True)
class RunOptions:
    sensors: int | None = None
    """Simulated sensors (`--simulate N`); None: no simulator, readings come from real sensors."""
    rate: float = 100.0
    duration_s: float | None = None
    """Simulate for this long (or, without a simulator, run this long), then stop cleanly."""


def prepare(settings: Settings, report: Report) -> None:
    """Everything the children need, idempotently: each failure is a LaunchError with its fix."""
    for check in (check_java, check_jars):
        result = check(settings)
        if not result.ok:
            raise LaunchError(f"{result.detail}: {result.fix}")
    try:
        Stack(settings).up(report)
        migrated = migrate(settings)
        report("database", f"migrated ({len(migrated.applied)} applied, {len(migrated.already)} already)")
        if migrated.timescale is not None:
            report("database", migrated.timescale.detail)
        create_topics(settings.kafka)
        report("kafka", f"topics {settings.kafka.topic}, {settings.kafka.dlq_topic} ready")
        if settings.lake.backend == "s3":
            ensure_bucket(settings.s3)
            report("lake", f"bucket {settings.s3.bucket} ready")
    except (StackError, StorageError, KafkaError, S3Error) as e:
        raise LaunchError(str(e)) from e


class SimulatorCommand:
    """The simulator's command line; after a restart it simulates only the time that was left."""

    def __init__(self, base: list[str], options: RunOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base
        self.options = options
        self.clock = clock
        self.deadline: float | None = None

    def __call__(self) -> list[str]:
        assert self.options.sensors is not None
        command = [*self.base, "simulate", "--sensors", str(self.options.sensors), "--rate", str(self.options.rate)]
        if self.options.duration_s is None:
            return command
        if self.deadline is None:
            self.deadline = self.clock() + self.options.duration_s
        left = max(self.deadline - self.clock(), 1.0)
        return [*command, "--duration", f"{left:.1f}"]


def child_specs(root_args: list[str], options: RunOptions) -> list[ChildSpec]:
    """`root_args` repeat the root options (`--config`, `--set`, `--home`) so every child has the same settings."""
    base = [sys.executable, "-m", "sensorpipe", *root_args]
    specs = [
        # The job finishes its running micro-batch (up to STOP_GRACE_S), then stops Spark. Its JVM must not
        # get the signal too: it would shut Spark down under the running batch.
        ChildSpec(STREAM, lambda: [*base, "stream"], stop_timeout_s=STOP_GRACE_S + 30, signal_group=False),
        ChildSpec(BRIDGE, lambda: [*base, "bridge"], stop_timeout_s=30),
    ]
    if options.sensors is not None:
        specs.append(ChildSpec(SIMULATOR, SimulatorCommand(base, options), stop_timeout_s=30, finishes=True))
    return specs


def bridge_subscribed(settings: Settings) -> bool | None:
    """Whether the broker confirmed the bridge's subscriptions; None when its metrics are off (cannot tell)."""
    bridge = settings.bridge
    if bridge.metrics_port is None:
        return None
    try:
        return (
            scrape(bridge.metrics_host, bridge.metrics_port, timeout_s=1.0).total("sensorpipe_bridge_mqtt_subscribed")
            == 1
        )
    except ScrapeError:
        return False


def stream_backlog(settings: Settings, admin: AdminClient | None = None) -> int | None:
    """Records on `kafka.topic` that the `readings` query has not committed; None when that cannot be read.

    Exact, from the query's own checkpoint against Kafka's end offsets: a metric could be a batch old.
    `admin` (from `admin_client`) spares a caller that asks every second a new Kafka client each time.
    """
    topic = settings.kafka.topic
    try:
        marks = watermarks(settings.kafka, topic, admin=admin)
        log = read_checkpoint(settings, "readings")
        resume = entry_offsets(log.resume if log is not None else None).get(topic, {})
    except (KafkaError, UnreadableCheckpointError, OSError):
        return None
    return None if marks is None else records_behind(resume, marks)


__all__ = [
    "BRIDGE",
    "SIMULATOR",
    "STOP_ORDER",
    "STREAM",
    "LaunchError",
    "RunOptions",
    "SimulatorCommand",
    "bridge_subscribed",
    "child_specs",
    "prepare",
    "stream_backlog",
]
