"""A lake as sensorpipe wrote it before its Delta tables — Spark's own Parquet file sink, partitioned by
date and hour, with its `_spark_metadata` log — made into the Delta tables, and the job run on it after."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from sensorpipe.config import Settings
from sensorpipe.storage.lake import AGG_1M, RAW, dataset_uri, read_dataset
from sensorpipe.stream.lake_migrate import file_sink_datasets
from tests.ingest_support import read_topic
from tests.stream_support import T0, Lane, produce, reading, run_stream

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]

OLD_RAW = (
    "time timestamp, sensor_id string, temperature double, humidity double, raw_data string, time_source string,"
    " kafka_partition int, kafka_offset long, name string, location string, kind string, date string, hour int"
)


def _file_sink_batch(spark: SparkSession, lane: Lane, source: Path, readings: list[dict[str, object]]) -> None:
    """One micro-batch of the old `readings` query's lake sink: Spark's file sink, partitioned as it was."""
    source.mkdir(exist_ok=True)
    (source / f"{len(list(source.iterdir()))}.json").write_text("\n".join(json.dumps(r) for r in readings))
    query = (
        spark.readStream.schema(OLD_RAW)
        .json(str(source))
        .writeStream.format("parquet")
        .partitionBy("date", "hour")
        .option("path", dataset_uri(lane.settings, RAW))
        .option("checkpointLocation", f"{dataset_uri(lane.settings, RAW)}-old-checkpoint")
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(300)


def test_a_file_sink_lake_is_migrated_when_the_job_starts_and_the_job_goes_on_from_it(
    migrated: Settings, lane: Lane, spark: SparkSession, tmp_path: Path
) -> None:
    sensor = lane.sensor("old")
    produce(migrated, lane.topic, [json.dumps(reading(sensor, 1_500 * i)).encode() for i in range(6)])
    # What the old job made of those six records: rows with their Kafka coordinates (a new topic's
    # partitions count from offset 0), through Spark's file sink in two micro-batches.
    seen: dict[int, int] = {}
    old = []
    for record in read_topic(migrated, lane.topic, 6):
        payload = json.loads(record.value)
        moment = datetime.fromtimestamp(float(payload["timestamp"]), UTC)
        offset = seen[record.partition] = seen.get(record.partition, -1) + 1
        old.append(
            {
                "time": moment.isoformat(),
                "sensor_id": sensor,
                "temperature": payload["temperature"],
                "raw_data": record.value.decode(),
                "time_source": "payload",
                "kafka_partition": record.partition,
                "kafka_offset": offset,
                "date": moment.strftime("%Y-%m-%d"),
                "hour": moment.hour,
            }
        )
    _file_sink_batch(spark, lane, tmp_path / "old", old[:4])
    _file_sink_batch(spark, lane, tmp_path / "old", old[4:])
    assert file_sink_datasets(lane.settings) == [RAW]
    produce(migrated, lane.topic, [json.dumps(reading(sensor, 20_000 + i)).encode() for i in range(2)])

    run_stream(spark, lane)  # migrates, then reads Kafka from its earliest offset: the six again, and two new

    assert file_sink_datasets(lane.settings) == []
    lake = read_dataset(lane.settings, RAW, columns=["sensor_id", "time"]).to_pylist()
    times = sorted(r["time"] for r in lake if r["sensor_id"] == sensor)
    expected = [T0 + timedelta(seconds=s) for s in (*range(0, 9_000, 1_500), 20_000, 20_001)]
    assert times == expected, "the six migrated once (not again from Kafka) and the two new ones"
    minutes = read_dataset(lane.settings, AGG_1M, columns=["bucket"]).num_rows
    assert minutes >= 6, "agg_1m computed again from raw, old readings included"
