"""The stream job: Kafka → decode and validate → database (readings and their minutes), dead letters, lake.

Two streaming queries share one SparkSession, each with its own stable checkpoint (stream/checkpoints.py):

- `readings`: reads Kafka and decodes each record once, in one Spark job per micro-batch: each task's
  partition writer (stream/sinks.py) decodes its Kafka rows (stream/decode.py), stores valid readings
  and rejects in the database (binary COPY, idempotent) and, in the same transaction, merges the stored
  readings into their one-minute aggregates in `sensor_data_1m` (storage/minutes.py: they never trail the
  readings, late or not); it publishes the rejects to the dead-letter topic and stages the stored
  readings for the lake. A driver thread (stream/lake_commit.py) commits what is staged to the lake's
  Delta table `raw` every `lake.commit_interval_s`, enriched with `sensor_metadata`, each reading once
  (Kafka offsets recorded in the same commit). A reading the bridge forwarded twice (a crash before its
  MQTT acknowledgement) reaches the lake once: the copy the database stored.
- `aggregates_lake`: one-minute windows per sensor with a watermark, read from `raw` as a Delta stream
  (committed versions only, each once), in append mode to the lake's `agg_1m`: each window once, final,
  after the watermark passed it; every `stream.lake_aggregates_trigger`, one Delta commit per batch that
  records the batch's id (a replayed batch is skipped). A reading later than the watermark is in
  `sensor_data_1m` but not in `agg_1m`, whose minutes are final.

Exactly once end to end: Kafka offsets and Delta versions read live in the checkpoints, and every sink is
idempotent (offsets and batch ids recorded in the Delta log; `(sensor_id, time)` key, and only the
readings a transaction stored are merged into their minutes; rejects unique on their Kafka coordinates).
The dead-letter topic is the exception: a replayed batch can publish a reject to it twice, under the same
key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery
from pyspark.sql.streaming.readwriter import DataStreamWriter

from sensorpipe.clients.kafka_client import spark_kafka_options
from sensorpipe.config import Settings
from sensorpipe.storage.lake import AGG_1M, RAW, append, dataset_uri, ensure_table, with_partition_columns
from sensorpipe.stream.checkpoints import checkpoint_query_id, checkpoint_uri
from sensorpipe.stream.decode import ENCODING, KAFKA_COLUMNS
from sensorpipe.stream.monitoring import StreamMetrics
from sensorpipe.stream.sinks import LATENCY, REJECTED, TALLY_SCHEMA, Tally, readings_writer

logger = logging.getLogger(__name__)

WINDOW = "1 minute"
RAW_BYTES_PER_BATCH = "256m"
"""How much of `raw` one aggregates batch reads at most: after a reset or a migration the aggregates read
the whole table again, which in one batch ran a 1 GB driver out of memory on a month of readings."""


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
    """The lake's `raw` as a Delta stream: the rows of each commit, in order, once.

    Commits that only rewrite files (compaction) bring nothing new and are passed over by Delta itself;
    commits that delete rows (`lake.retention_days`) are skipped: the aggregates of old minutes stay.
    """
    return (
        spark.readStream.format("delta")
        .option("skipChangeCommits", "true")
        .option("maxBytesPerTrigger", RAW_BYTES_PER_BATCH)
        .load(dataset_uri(settings, RAW))
        .select("sensor_id", "time", "temperature", "humidity")
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
    metrics.count_sink_rows("database", tally.rows("sensor_data"))
    metrics.count_sink_rows("aggregates", tally.rows("sensor_data_1m"))


def _readings_batch(settings: Settings, metrics: StreamMetrics) -> Callable[[DataFrame, int], None]:
    """foreachBatch of the `readings` query: one Spark job from Kafka to the database, dead letters and staging.

    Each task decodes its records, and its partition writer (stream/sinks.py) stores them in the database,
    publishes the rejects, and stages the stored valid readings for the lake's next commit. Nothing is
    cached or computed twice, and a staged reading is one the database already holds.
    """

    def run(batch: DataFrame, batch_id: int) -> None:
        written = batch.select(*KAFKA_COLUMNS).mapInArrow(readings_writer(settings, batch_id), TALLY_SCHEMA)
        _record(Tally().add(written.collect()), metrics)

    return run


def _aggregates_lake_batch(settings: Settings, metrics: StreamMetrics) -> Callable[[DataFrame, int], None]:
    """Final windows into `agg_1m`, one Delta commit per batch recording (checkpoint's query id, batch id):
    a batch replayed after a crash between the commit and the checkpoint's is skipped by its recorded id."""
    app_id: list[str] = []

    def run(batch: DataFrame, batch_id: int) -> None:
        from deltalake import Transaction

        windows = batch.toArrow()
        if not windows.num_rows:  # no minute became final: no commit (a version a minute for nothing)
            return
        if not app_id:  # the checkpoint holds the query's id once the query has started
            app_id.append(f"sensorpipe:aggregates_lake:{checkpoint_query_id(settings, 'aggregates_lake')}")
        table = ensure_table(settings, AGG_1M)
        done = table.transaction_version(app_id[0])
        if done is not None and done >= batch_id:
            logger.info("agg_1m holds batch %d of aggregates_lake already: skipped", batch_id)
            return
        append(
            settings,
            AGG_1M,
            with_partition_columns(windows, "bucket"),
            [Transaction(app_id[0], batch_id)],
        )
        metrics.count_sink_rows("aggregates_lake", windows.num_rows)

    return run


def _writer(frame: DataFrame, name: str, settings: Settings, available_now: bool) -> DataStreamWriter:
    # A query runs its jobs in the scheduler pool set when it starts (session.py sets FAIR scheduling):
    # the readings get half the cores whenever they have work, however busy the lake's aggregates are.
    pool = "readings" if name == "readings" else "aggregates"
    frame.sparkSession.sparkContext.setLocalProperty("spark.scheduler.pool", pool)
    stream = frame.writeStream.queryName(name).option("checkpointLocation", checkpoint_uri(settings, name))
    if available_now:
        return stream.trigger(availableNow=True)
    intervals = {
        "readings": settings.stream.trigger,
        # A minute becomes final once a minute at most: checking every few seconds only costs batches.
        "aggregates_lake": settings.stream.lake_aggregates_trigger,
    }
    return stream.trigger(processingTime=intervals[name])


def start_readings(
    spark: SparkSession, settings: Settings, metrics: StreamMetrics, *, available_now: bool = False
) -> StreamingQuery:
    """Start the `readings` query; `available_now` processes what Kafka holds now and then stops."""
    source = kafka_source(spark, settings)
    query = (
        _writer(source, "readings", settings, available_now).foreachBatch(_readings_batch(settings, metrics)).start()
    )
    logger.info("started query readings (checkpoint %s)", checkpoint_uri(settings, "readings"))
    return query


def start_aggregates(
    spark: SparkSession, settings: Settings, metrics: StreamMetrics, *, available_now: bool = False
) -> StreamingQuery:
    """Start the lake's aggregates query on `raw` (created empty here when it is not there yet)."""
    ensure_table(settings, RAW)
    query = (
        _writer(_windows(lake_source(spark, settings), settings), "aggregates_lake", settings, available_now)
        .outputMode("append")
        .foreachBatch(_aggregates_lake_batch(settings, metrics))
        .start()
    )
    logger.info("started query aggregates_lake (checkpoint %s)", checkpoint_uri(settings, "aggregates_lake"))
    return query
