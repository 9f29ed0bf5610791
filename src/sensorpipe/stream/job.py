"""The stream job: Kafka → decode and validate → database, lake, dead letters; then one-minute aggregates.

Three streaming queries share one SparkSession, each with its own stable checkpoint (stream/checkpoints.py):

- `readings`: reads Kafka and decodes each record once, in one Spark job per micro-batch: each task's
  partition writer (stream/sinks.py) stores valid readings and rejects in the database (binary COPY,
  idempotent), publishes the rejects to the dead-letter topic, and hands the stored readings on, enriched
  with `sensor_metadata`, to the lake's `raw/date=…/hour=…` through Spark's file sink
  (stream/lake_sink.py), whose log makes each batch land once. A reading the bridge forwarded twice
  (a crash before its MQTT acknowledgement) reaches the lake once: the copy the database stored.
- `aggregates`: one-minute windows per sensor with a watermark, read from the lake's `raw` as a file
  stream (through its sink log: committed batches only, each once), in update mode: a window is upserted
  again whenever late data (within the watermark) changes it.
- `aggregates_lake`: the same windows in append mode to the lake's `agg_1m`: each window once, final,
  after the watermark passed it (a file sink cannot take updates); every `stream.lake_aggregates_trigger`.

The aggregates read the lake rather than Kafka so that nothing is decoded twice; they trail the readings
by one trigger. Exactly once end to end: Kafka offsets and lake files read live in the checkpoints, and
every sink is idempotent (file sink log; `(sensor_id, time)` and `(sensor_id, bucket)` keys; rejects unique
on their Kafka coordinates). The dead-letter topic is the exception: a replayed batch can publish a reject
to it twice, under the same key.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery
from pyspark.sql.streaming.readwriter import DataStreamWriter

from sensorpipe.clients.kafka_client import spark_kafka_options
from sensorpipe.config import Settings
from sensorpipe.contract.columns import AGGREGATE_COLUMNS
from sensorpipe.storage.lake import AGG_1M, DATE_COLUMN, HOUR_COLUMN, RAW, dataset_uri
from sensorpipe.stream.checkpoints import checkpoint_uri
from sensorpipe.stream.decode import as_writer_columns, decode, valid_readings
from sensorpipe.stream.enrichment import SensorMetadata
from sensorpipe.stream.lake_sink import ParquetLakeSink
from sensorpipe.stream.monitoring import StreamMetrics
from sensorpipe.stream.sinks import (
    DATABASE_COLUMNS,
    ENCODING,
    LATENCY,
    REJECTED,
    TALLY_SCHEMA,
    Tally,
    TallyParam,
    aggregates_writer,
    readings_writer,
)

logger = logging.getLogger(__name__)

WINDOW = "1 minute"
LAKE_FILES_PER_BATCH = 2
"""Tasks writing a micro-batch to the lake: at most this many files per date/hour partition per trigger.

Fewer files mean larger ones; the trigger interval sets how often a batch (and its files) is written:
at a 1 s trigger and 10,000 readings/s a file holds about 5,000 readings (~150 KB). A longer trigger
makes larger files and a later lake; the database is written at the same pace either way.
"""

LAKE_READINGS_SCHEMA = (
    f"sensor_id string, time timestamp, temperature double, humidity double, {DATE_COLUMN} string, {HOUR_COLUMN} int"
)
"""The columns of the lake's `raw` the aggregates read (Parquet reads only these)."""


def kafka_source(spark: SparkSession, settings: Settings) -> DataFrame:
    """`kafka.topic` from the earliest retained offset on a first start (later starts: the checkpoint)."""
    reader = (
        spark.readStream.format("kafka")
        .options(**spark_kafka_options(settings.kafka))
        .option("subscribe", settings.kafka.topic)
        .option("startingOffsets", "earliest")
        .option("includeHeaders", "true")
        # Offsets gone from Kafka fail loudly (and are explained): never a silent gap.
        .option("failOnDataLoss", "true")
    )
    if settings.stream.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.stream.max_offsets_per_trigger))
    return reader.load()


def lake_source(spark: SparkSession, settings: Settings) -> DataFrame:
    """The lake's `raw` as a stream: the files of each batch the readings query committed, in order, once."""
    return spark.readStream.schema(LAKE_READINGS_SCHEMA).parquet(dataset_uri(settings, RAW))


def _partitioned(frame: DataFrame, time_column: str) -> DataFrame:
    """Hive partition columns from UTC (the session time zone is UTC, see stream/session.py)."""
    return frame.withColumn(DATE_COLUMN, F.date_format(time_column, "yyyy-MM-dd")).withColumn(
        HOUR_COLUMN, F.hour(time_column)
    )


def _windows(readings: DataFrame, settings: Settings) -> DataFrame:
    return (
        readings.withWatermark("time", settings.stream.watermark)
        .groupBy(F.window("time", WINDOW), "sensor_id")
        .agg(
            F.count(F.lit(1)).cast("int").alias("readings"),
            F.avg("temperature").alias("avg_temperature"),
            F.min("temperature").alias("min_temperature"),
            F.max("temperature").alias("max_temperature"),
            F.avg("humidity").alias("avg_humidity"),
            F.min("humidity").alias("min_humidity"),
            F.max("humidity").alias("max_humidity"),
        )
        .withColumn("bucket", F.col("window.start"))
        .drop("window")
    )


def _record(tally: Tally, metrics: StreamMetrics) -> None:
    for encoding, n in tally.of(ENCODING).items():
        metrics.count_encoding(n, encoding)
    for reason, n in tally.of(REJECTED).items():
        metrics.count_rejects(n, reason)
    metrics.count_latencies(tally.of(LATENCY))
    stored = tally.rows("sensor_data")
    metrics.count_sink_rows("database", stored)
    metrics.count_sink_rows("lake", stored)


def _readings_batch(
    spark: SparkSession, settings: Settings, metrics: StreamMetrics
) -> Callable[[DataFrame, int], None]:
    """foreachBatch of the `readings` query: one Spark job from Kafka to the database, dead letters and lake.

    Each task decodes its records, and its partition writer (stream/sinks.py) stores them in the database,
    publishes the rejects, and hands on the stored valid readings, which the same task enriches and writes
    to the lake. Nothing is cached or computed twice, and a lake file exists only for readings already in
    the database. A batch the lake's log holds already (a replay after a crash between the lake's commit
    and the query's) is skipped as a whole: its database writes were done before its lake files.
    """
    lake = ParquetLakeSink(spark, dataset_uri(settings, RAW), (DATE_COLUMN, HOUR_COLUMN))
    metadata = SensorMetadata(spark, settings)

    def run(batch: DataFrame, batch_id: int) -> None:
        tally = spark.sparkContext.accumulator(Counter(), TallyParam())
        stored = as_writer_columns(batch, DATABASE_COLUMNS).mapInArrow(
            readings_writer(settings, tally.add), valid_readings(batch).schema
        )
        lake.add_batch(batch_id, _partitioned(metadata.enrich(stored), "time").coalesce(LAKE_FILES_PER_BATCH))
        _record(Tally(tally.value), metrics)

    return run


def _aggregates_batch(settings: Settings, metrics: StreamMetrics) -> Callable[[DataFrame, int], None]:
    write = aggregates_writer(settings.postgres)

    def run(batch: DataFrame, _batch_id: int) -> None:
        tally = Tally().add(batch.select(*AGGREGATE_COLUMNS).mapInArrow(write, TALLY_SCHEMA).collect())
        metrics.count_sink_rows("aggregates", tally.rows("sensor_data_1m"))

    return run


def _writer(frame: DataFrame, name: str, settings: Settings, available_now: bool) -> DataStreamWriter:
    # A query runs its jobs in the scheduler pool set when it starts (session.py sets FAIR scheduling):
    # the readings get half the cores whenever they have work, however busy the aggregates are.
    pool = "readings" if name == "readings" else "aggregates"
    frame.sparkSession.sparkContext.setLocalProperty("spark.scheduler.pool", pool)
    stream = frame.writeStream.queryName(name).option("checkpointLocation", checkpoint_uri(settings, name))
    if available_now:
        return stream.trigger(availableNow=True)
    intervals = {
        "readings": settings.stream.trigger,
        "aggregates": settings.stream.aggregates_trigger,
        # A minute becomes final once a minute at most: checking every few seconds only costs batches.
        "aggregates_lake": settings.stream.lake_aggregates_trigger,
    }
    return stream.trigger(processingTime=intervals[name])


def start_readings(
    spark: SparkSession, settings: Settings, metrics: StreamMetrics, *, available_now: bool = False
) -> StreamingQuery:
    """Start the `readings` query; `available_now` processes what Kafka holds now and then stops."""
    decoded = decode(kafka_source(spark, settings), settings)
    query = (
        _writer(decoded, "readings", settings, available_now)
        .foreachBatch(_readings_batch(spark, settings, metrics))
        .start()
    )
    logger.info("started query readings (checkpoint %s)", checkpoint_uri(settings, "readings"))
    return query


def start_aggregates(
    spark: SparkSession, settings: Settings, metrics: StreamMetrics, *, available_now: bool = False
) -> list[StreamingQuery]:
    """Start both aggregates queries on the lake's `raw` (which the readings query must have created)."""
    queries = [
        _writer(_windows(lake_source(spark, settings), settings), "aggregates", settings, available_now)
        .outputMode("update")
        .foreachBatch(_aggregates_batch(settings, metrics))
        .start(),
        _writer(
            _partitioned(_windows(lake_source(spark, settings), settings), "bucket"),
            "aggregates_lake",
            settings,
            available_now,
        )
        .outputMode("append")
        .format("parquet")
        .partitionBy(DATE_COLUMN, HOUR_COLUMN)
        .option("path", dataset_uri(settings, AGG_1M))
        .start(),
    ]
    for query in queries:
        logger.info("started query %s (checkpoint %s)", query.name, checkpoint_uri(settings, query.name or ""))
    return queries
