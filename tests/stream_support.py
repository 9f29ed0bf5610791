"""The stream job's test lanes: a topic, lake and metrics port of a test's own, records into Kafka, a job run."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
from confluent_kafka import Producer

from sensorpipe.clients.kafka_client import client_config
from sensorpipe.clients.topics import create_topics
from sensorpipe.config import Settings
from sensorpipe.storage.s3 import ensure_bucket
from sensorpipe.stream.runner import job_totals, run_job
from tests.support import free_port

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class Lane:
    """A topic, sensor ids, a lake bucket, checkpoints and a metrics port of this test's own.

    Each lane needs its own lake and checkpoints: the lake's tables record what each checkpoint's queries
    wrote, and a checkpoint shared by two lanes' jobs would resume one from the other's offsets.
    """

    def __init__(self, settings: Settings, *, checkpoints_beside_lake: bool = False) -> None:
        """Checkpoints on local disk, as a local master keeps them by default; beside the lake (on S3) for
        a cluster, as a cluster master does."""
        self.tag = uuid.uuid4().hex[:8]
        self.topic = f"stream-{self.tag}"
        self.bucket = f"lake-{self.tag}"
        self.metrics_port = free_port()
        self.checkpoints = (
            f"s3a://{self.bucket}/_checkpoints"
            if checkpoints_beside_lake
            else (settings.home / f"checkpoints-{self.tag}").as_uri()
        )
        self.settings = settings.model_copy(
            update={
                "s3": settings.s3.model_copy(update={"bucket": self.bucket}),
                "stream": settings.stream.model_copy(update={"checkpoint_base": self.checkpoints}),
            }
        )
        ensure_bucket(self.settings.s3)

    def sensor(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def flags(self) -> list[str]:
        pairs = {
            "kafka.topic": self.topic,
            "kafka.dlq_topic": f"{self.topic}-dlq",
            "s3.bucket": self.bucket,
            "stream.checkpoint_base": self.checkpoints,
            "stream.metrics_port": str(self.metrics_port),
        }
        return [arg for key, value in pairs.items() for arg in ("--set", f"{key}={value}")]

    def job_settings(self) -> Settings:
        """The settings `flags()` give the command line, for a job run in this process."""
        s = self.settings
        return s.model_copy(
            update={
                "kafka": s.kafka.model_copy(update={"topic": self.topic, "dlq_topic": f"{self.topic}-dlq"}),
                "stream": s.stream.model_copy(update={"metrics_port": self.metrics_port}),
            }
        )


Headers = list[tuple[str, str | bytes | None]]


def produce(settings: Settings, topic: str, values: list[bytes], headers: list[Headers] | None = None) -> None:
    """Every value (with its headers, when given) into `topic`, each confirmed by Kafka."""
    create_topics(settings.kafka.model_copy(update={"topic": topic, "dlq_topic": f"{topic}-dlq"}))
    failures: list[str] = []
    producer = Producer(client_config(settings.kafka, **{"enable.idempotence": True}))
    for index, value in enumerate(values):
        producer.produce(
            topic,
            value,
            headers=headers[index] if headers else None,
            on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failures, failures[:3]


def reading(sensor: str, index: int) -> dict[str, object]:
    moment = T0 + timedelta(seconds=index)
    return {"sensor_id": sensor, "timestamp": moment.timestamp(), "temperature": 20.5, "humidity": 40.0}


def encodings(payload: dict[str, object]) -> dict[str, bytes]:
    """The same reading in every encoding the job must accept (docs/design.md "Data contract")."""
    raw = json.dumps(payload).encode()
    b64 = base64.b64encode(raw).decode()
    return {
        "raw_json": raw,
        "base64_json": b64.encode(),
        "quoted_base64": json.dumps(b64).encode(),
        "envelope_base64": json.dumps({"schema": {"type": "bytes"}, "payload": b64}).encode(),
    }


def run_stream(spark: SparkSession, lane: Lane) -> dict[str, dict[str, int]]:
    """What `stream --available-now --json` does, on the process's one SparkSession: Kafka's records now,
    then the job's totals. The command line itself runs in the reset test below."""
    return job_totals(run_job(lane.job_settings(), spark, available_now=True))


def stored_keys(settings: Settings, tag: str) -> list[tuple[str, datetime]]:
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "select sensor_id, time from sensor_data where sensor_id like %s order by 1, 2", (f"{tag}-%",)
        ).fetchall()
    return [(r[0], r[1]) for r in rows]
