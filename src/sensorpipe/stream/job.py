"""The stream job: Kafka → decode and validate → lake, database, one-minute aggregates, dead letters.

Four streaming queries share one SparkSession, each with its own stable checkpoint (stream/checkpoints.py):

- `database`: every decoded record; valid readings and rejects are written from the executors
  (`foreachPartition` with the storage writer, idempotent), rejects also to the dead-letter topic.
- `lake`: valid readings, enriched with `sensor_metadata`, as Parquet in `raw/date=…/hour=…` through
  Spark's file sink, whose log makes the lake exactly once.
- `aggregates`: one-minute windows per sensor with a watermark, in update mode: a window is upserted
  again whenever late data (within the watermark) changes it.
- `aggregates_lake`: the same windows in append mode to the lake's `agg_1m`: each window once, final,
  after the watermark passed it (a file sink cannot take updates).

Exactly once end to end: Kafka offsets live in the checkpoints, and every sink is idempotent (file sink
log; `(sensor_id, time)` and `(sensor_id, bucket)` keys; rejects unique on their Kafka coordinates).
The dead-letter topic is the exception: a replayed batch can publish a reject to it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery
from pyspark.sql.streaming.readwriter import DataStreamWriter

from sensorpipe.config import Settings
from sensorpipe.storage.lake import AGG_1M, DATE_COLUMN, HOUR_COLUMN, RAW, dataset_uri
from sensorpipe.storage.writer import AGGREGATE_COLUMNS, READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.stream.checkpoints import checkpoint_uri
from sensorpipe.stream.decode import decode, rejected_records, valid_readings
from sensorpipe.stream.monitoring import StreamMetrics
from sensorpipe.stream.sinks import MICROS_SUFFIX, aggregates_writer, readings_writer, rejects_writer

logger = logging.getLogger(__name__)

WINDOW = "1 minute"
LAKE_FILES_PER_BATCH = 2
"""Tasks writing a micro-batch to the lake: at most this many files per date/hour partition per trigger.

Fewer files mean larger ones; the trigger interval sets how often a batch (and its files) is written:
at a 1 s trigger and 10,000 readings/s a file holds about 5,000 readings (~150 KB). A longer trigger
makes larger files and a later lake; the database is written at the same pace either way.
"""


def kafka_source(spark: SparkSession, settings: Settings) -> DataFrame:
    """`kafka.topic` from the earliest retained offset on a first start (later starts: the checkpoint)."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
        .option("subscribe", settings.kafka.topic)
        .option("startingOffsets", "earliest")
        .option("includeHeaders", "true")
        # Offsets gone from Kafka fail loudly (and are explained): never a silent gap.
        .option("failOnDataLoss", "true")
    )
    if settings.stream.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.stream.max_offsets_per_trigger))
    return reader.load()


def _micros(column: str) -> Column:
    return F.unix_micros(F.col(column)).alias(column + MICROS_SUFFIX)


def _partitioned(frame: DataFrame, time_column: str) -> DataFrame:
    """Hive partition columns from UTC (the session time zone is UTC, see stream/session.py)."""
    return frame.withColumn(DATE_COLUMN, F.date_format(time_column, "yyyy-MM-dd")).withColumn(
        HOUR_COLUMN, F.hour(time_column)
    )


def _metadata(spark: SparkSession, settings: Settings) -> DataFrame:
    """`sensor_metadata` as the read-only role; a stream-static join reads it again at every micro-batch."""
    pg = settings.postgres
    return (
        spark.read.format("jdbc")
        .option("url", f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}")
        .option("dbtable", "(select sensor_id, name, location, kind from sensor_metadata) as metadata")
        .option("user", pg.reader_user)
        .option("password", pg.reader_password.get_secret_value())
        .option("driver", "org.postgresql.Driver")
        .load()
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


def _count(batch: DataFrame, metrics: StreamMetrics) -> None:
    """Records per encoding, rejects per reason and rows stored: one small aggregate, never the rows."""
    tally = batch.groupBy(
        (F.col("element") == 0).alias("first"), "encoding", F.col("reject_reason").alias("reason")
    ).count()
    for first, encoding, reason, count in tally.collect():
        if first:
            metrics.count_encoding(count, encoding)
        if reason is None:
            metrics.count_sink_rows("database", count)
        else:
            metrics.count_rejects(count, reason)


def _database_batch(settings: Settings, metrics: StreamMetrics) -> Callable[[DataFrame, int], None]:
    """foreachBatch of the `database` query: readings and rejects from the executors, rejects to the DLQ."""
    write_readings = readings_writer(settings.postgres)
    write_rejects = rejects_writer(settings.postgres)

    def run(batch: DataFrame, _batch_id: int) -> None:
        batch.persist()
        try:
            readings = valid_readings(batch)
            readings.select(_micros("time"), *READING_COLUMNS[1:]).foreachPartition(write_readings)
            rejects = rejected_records(batch).select(*REJECT_COLUMNS).persist()
            rejects.foreachPartition(write_rejects)
            (
                rejects.select(
                    # The reject's identity: a replayed batch republishes under the same key (compaction drops it).
                    F.concat_ws(":", "kafka_topic", "kafka_partition", "kafka_offset", "element").alias("key"),
                    F.to_json(
                        F.struct(
                            "reason",
                            "detail",
                            F.base64("payload").alias("payload_base64"),
                            "kafka_topic",
                            "kafka_partition",
                            "kafka_offset",
                            "element",
                        )
                    ).alias("value"),
                )
                .write.format("kafka")
                .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
                .option("topic", settings.kafka.dlq_topic)
                .save()
            )
            rejects.unpersist()
            _count(batch, metrics)
        finally:
            batch.unpersist()

    return run


def _aggregates_batch(settings: Settings) -> Callable[[DataFrame, int], None]:
    write = aggregates_writer(settings.postgres)

    def run(batch: DataFrame, _batch_id: int) -> None:
        batch.select(_micros("bucket"), *AGGREGATE_COLUMNS[1:]).foreachPartition(write)

    return run


def start_queries(
    spark: SparkSession, settings: Settings, metrics: StreamMetrics, *, available_now: bool = False
) -> list[StreamingQuery]:
    """Start the four queries; `available_now` processes what Kafka holds now and then stops (tests, catch-up)."""
    decoded = decode(kafka_source(spark, settings), settings)
    readings = valid_readings(decoded)

    def writer(frame: DataFrame, name: str) -> DataStreamWriter:
        stream = frame.writeStream.queryName(name).option("checkpointLocation", checkpoint_uri(settings, name))
        if available_now:
            return stream.trigger(availableNow=True)
        return stream.trigger(processingTime=settings.stream.trigger)

    enriched = readings.join(F.broadcast(_metadata(spark, settings)), "sensor_id", "left")
    queries = [
        writer(decoded, "database").foreachBatch(_database_batch(settings, metrics)).start(),
        writer(_partitioned(enriched, "time").coalesce(LAKE_FILES_PER_BATCH), "lake")
        .format("parquet")
        .partitionBy(DATE_COLUMN, HOUR_COLUMN)
        .option("path", dataset_uri(settings, RAW))
        .start(),
        writer(_windows(readings, settings), "aggregates")
        .outputMode("update")
        .foreachBatch(_aggregates_batch(settings))
        .start(),
        writer(_partitioned(_windows(readings, settings), "bucket"), "aggregates_lake")
        .outputMode("append")
        .format("parquet")
        .partitionBy(DATE_COLUMN, HOUR_COLUMN)
        .option("path", dataset_uri(settings, AGG_1M))
        .start(),
    ]
    for query in queries:
        logger.info("started query %s (checkpoint %s)", query.name, checkpoint_uri(settings, query.name or ""))
    return queries
