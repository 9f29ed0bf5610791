"""A real SparkSession with the pinned jars: Kafka in, Parquet on the local S3 server out.

Proves the original stack's problems 1 (Spark's Kafka and S3A classes load from one pinned set) and
5 (Parquet files do appear in the bucket, with S3A configured from the `[s3]` section only).
"""

from __future__ import annotations

import json
import uuid
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from sensorpipe.clients.kafka_client import client_config, spark_kafka_options
from sensorpipe.config import Settings, load_settings
from sensorpipe.jvm import JarsError
from sensorpipe.storage.s3 import s3_client
from sensorpipe.stream import build_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]

RECORDS = 100
SENSORS = 5
VALUE_SCHEMA = "sensor_id STRING, seq INT, temperature DOUBLE, humidity DOUBLE, timestamp DOUBLE"


@pytest.fixture(scope="module")
def run_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def produced(stack_settings: Settings, run_id: str) -> tuple[str, list[dict[str, Any]]]:
    """A new topic holding RECORDS JSON readings, each acknowledged by the broker."""
    topic = f"smoke-{run_id}"
    admin = AdminClient(client_config(stack_settings.kafka))
    for future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
        future.result(timeout=30)
    readings: list[dict[str, Any]] = [
        {
            "sensor_id": f"sensor-{i % SENSORS}",
            "seq": i,
            "temperature": round(18.0 + i * 0.25, 2),
            "humidity": round(40.0 + (i % 7) * 3.5, 1),
            "timestamp": 1_795_000_000.0 + i,
        }
        for i in range(RECORDS)
    ]
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    producer = Producer(client_config(stack_settings.kafka, **{"enable.idempotence": True, "acks": "all"}))
    for reading in readings:
        producer.produce(topic, key=reading["sensor_id"], value=json.dumps(reading), on_delivery=delivered)
    assert producer.flush(30) == 0, "records still unacknowledged after 30 s"
    assert not errors, errors
    return topic, readings


def test_kafka_batch_lands_as_parquet_on_s3(
    spark: SparkSession, stack_settings: Settings, produced: tuple[str, list[dict[str, Any]]], run_id: str
) -> None:
    from pyspark.sql import functions as F

    topic, readings = produced
    raw = (
        spark.read.format("kafka")
        .options(**spark_kafka_options(stack_settings.kafka))
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    decoded = raw.select(
        F.col("key").cast("string").alias("key"),
        F.from_json(F.col("value").cast("string"), VALUE_SCHEMA).alias("v"),
        "partition",
        "offset",
    ).select("key", "v.*", "partition", "offset")
    target = f"{stack_settings.lake_uri}smoke/{run_id}/"
    assert target.startswith(f"s3a://{stack_settings.s3.bucket}/")
    decoded.write.mode("errorifexists").parquet(target)

    back = spark.read.parquet(target)
    assert back.count() == RECORDS
    rows = sorted((row.asDict() for row in back.collect()), key=lambda row: row["seq"])
    assert [{name: row[name] for name in readings[0]} for row in rows] == readings
    assert all(row["key"] == row["sensor_id"] for row in rows)
    assert len({(row["partition"], row["offset"]) for row in rows}) == RECORDS

    listing = s3_client(stack_settings.s3).list_objects_v2(Bucket=stack_settings.s3.bucket, Prefix=f"smoke/{run_id}/")
    objects = {item["Key"]: item["Size"] for item in listing.get("Contents", [])}
    parquet = {key: size for key, size in objects.items() if key.endswith(".parquet")}
    assert parquet, f"no .parquet object under smoke/{run_id}/: {sorted(objects)}"
    assert all(size > 0 for size in parquet.values())
    assert f"smoke/{run_id}/_SUCCESS" in objects


def test_a_mismatched_pyspark_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the installed version is simulated; the POM, the wheel's jars and the fetched set are real."""

    def installed(name: str) -> str:
        return "4.1.0" if name == "pyspark" else version(name)

    monkeypatch.setattr("sensorpipe.jvm.jars.version", installed)
    with pytest.raises(JarsError) as raised:
        build_session(load_settings(), "sensorpipe-mismatch")
    message = str(raised.value)
    assert "pyspark 4.1.0" in message
    assert "Spark 4.2.0" in message
    assert "pip install pyspark==4.2.0" in message
