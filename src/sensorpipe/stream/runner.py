"""Running the stream job on a given SparkSession: topics, monitoring, queries, a clean stop or a clear failure."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from sensorpipe.clients.kafka_client import topic_id
from sensorpipe.clients.topics import create_topics
from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.monitoring.metrics_server import serve_metrics
from sensorpipe.stream.checkpoints import (
    CheckpointError,
    explain_failure,
    move_lake_checkpoints,
    orphaned_tables,
    orphaned_tables_message,
    retire_checkpoints,
)
from sensorpipe.stream.job import start_aggregates, start_readings
from sensorpipe.stream.lake_commit import LakeCommitLoop, LakeCommits
from sensorpipe.stream.lake_migrate import migrate_lake
from sensorpipe.stream.monitoring import ProgressListener, StreamMetrics, failure_message

logger = logging.getLogger(__name__)

STOP_GRACE_S = 30.0
FIRST_BATCH_WAIT_S = 120.0
"""How long the lake's aggregates wait for the readings' first micro-batch before they start anyway."""


class StreamFailed(SensorpipeError):
    """A query of the job stopped with an error; the message says which, why, and what to do."""


@dataclass
class JobHandle:
    """What the caller of `run_job` may use while it runs: a way to ask for a clean stop."""

    stop_requested: threading.Event


def run_job(
    settings: Settings,
    spark: SparkSession,
    *,
    available_now: bool = False,
    handle: JobHandle | None = None,
    metrics: StreamMetrics | None = None,
) -> StreamMetrics:
    """Run until every query ends (`available_now`), a stop is requested, or a query fails (StreamFailed).

    The caller owns `spark` (`build_session`): the command line stops it afterwards, tests share one per
    process. The job stops its own queries and removes its listener, and leaves the session running.
    """
    handle = handle or JobHandle(threading.Event())
    metrics = metrics or StreamMetrics()
    create_topics(settings.kafka)
    move_lake_checkpoints(settings)  # kept beside the lake by an earlier run; says so in one line
    migrate_lake(settings)  # a lake of Spark's file sink (sensorpipe before Delta); says so in one line
    retire_checkpoints(settings)  # of queries an earlier sensorpipe ran; says so in one line
    orphaned = orphaned_tables(settings)
    if orphaned:
        raise CheckpointError(orphaned_tables_message(settings, orphaned))
    lake = LakeCommitLoop(LakeCommits(settings, topic_id(settings.kafka, settings.kafka.topic)), settings, metrics)
    server = None
    if settings.stream.metrics_port is not None:
        server = serve_metrics(
            metrics.registry, settings.stream.metrics_host, settings.stream.metrics_port, "stream.metrics_port"
        )
    listener = ProgressListener(metrics)
    spark.streams.addListener(listener)
    queries: list[StreamingQuery] = []
    try:
        queries.append(start_readings(spark, settings, metrics, available_now=available_now))
        if available_now:
            # The aggregates read the lake: they start once the readings query has written all it will.
            _await(spark, settings, queries, handle)
            lake.commit_now()
            if not handle.stop_requested.is_set():
                queries.append(start_aggregates(spark, settings, metrics, available_now=True))
                _await(spark, settings, queries[1:], handle)
        else:
            lake.start()
            _first_batch(queries[0], handle)
            queries.append(start_aggregates(spark, settings, metrics))
            _await(spark, settings, queries, handle)
            lake.stop()  # the readings query has stopped: commits what it staged last
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
        spark.streams.removeListener(listener)
        if server is not None:
            server.shutdown()
    return metrics


def _first_batch(query: StreamingQuery, handle: JobHandle) -> None:
    """Until `query` finished its first micro-batch (at most FIRST_BATCH_WAIT_S), or stopped.

    The first batch is the slowest (planning, code generation, a cold JIT), and starting the lake's
    aggregates beside it, which reads the Delta table's log, made the first row come 10 s later.
    """
    deadline = time.monotonic() + FIRST_BATCH_WAIT_S
    while query.isActive and query.lastProgress is None and time.monotonic() < deadline:
        if handle.stop_requested.wait(0.2):
            return


def _await(spark: SparkSession, settings: Settings, queries: list[StreamingQuery], handle: JobHandle) -> None:
    """Until every query ended or a stop is requested (then stop them); StreamFailed when one fails."""
    while any(q.isActive for q in queries) and not handle.stop_requested.is_set():
        with contextlib.suppress(StreamingQueryException):  # looked at below, query by query
            spark.streams.awaitAnyTermination(1)
        spark.streams.resetTerminated()
        for query in queries:
            error = query.exception()
            if error is not None:
                for other in queries:
                    other.stop()
                name = query.name or "?"
                text = str(error)
                raise StreamFailed(
                    explain_failure(settings, name, text) or f"query {name} failed: {failure_message(text)}"
                )
    for query in queries:
        if query.isActive:
            _finish_batch(query)
            logger.info("stopping query %s", query.name)
            query.stop()


def _finish_batch(query: StreamingQuery) -> None:
    """Give a running micro-batch up to STOP_GRACE_S to commit: a stop interrupts it, and the next start
    would do it again (nothing is lost or doubled either way, but a finished batch is less work)."""
    deadline = time.monotonic() + STOP_GRACE_S
    while query.isActive and query.status["isTriggerActive"] and time.monotonic() < deadline:
        time.sleep(0.1)


def job_totals(metrics: StreamMetrics) -> dict[str, dict[str, int]]:
    """What the job did, from its counters: records per encoding, rejects per reason, rows per sink, late rows."""
    totals: dict[str, dict[str, int]] = {"encodings": {}, "rejects": {}, "sink_rows": {}, "dropped_late": {}}
    wanted = {
        "sensorpipe_stream_encoded_rows_total": ("encodings", "encoding"),
        "sensorpipe_stream_rejected_rows_total": ("rejects", "reason"),
        "sensorpipe_stream_sink_rows_total": ("sink_rows", "sink"),
        "sensorpipe_stream_dropped_late_rows_total": ("dropped_late", "query"),
    }
    for metric in metrics.registry.collect():
        for sample in metric.samples:
            if sample.name in wanted:
                group, label = wanted[sample.name]
                totals[group][sample.labels[label]] = int(sample.value)
    return totals
