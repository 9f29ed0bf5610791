"""The progress listener on real local queries: metrics, one log line per batch, a failing query.

A rate source stands in for Kafka (its offsets are seconds, so no Kafka lag here: the unit tests
cover that on a real Kafka progress document). Every fifth row is an hour old, so from the second
batch on the window aggregation drops late rows behind its watermark.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sensorpipe.monitoring.metrics_server import serve_metrics
from sensorpipe.stream.monitoring import ProgressListener, StreamMetrics
from tests.support import free_port

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]

TIMEOUT_S = 40


@pytest.fixture
def metrics(spark: SparkSession) -> Iterator[StreamMetrics]:
    metrics = StreamMetrics()
    listener = ProgressListener(metrics)
    spark.streams.addListener(listener)
    try:
        yield metrics
    finally:
        spark.streams.removeListener(listener)


def rate(spark: SparkSession) -> DataFrame:
    return spark.readStream.format("rate").option("rowsPerSecond", 20).load()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {TIMEOUT_S} s"
        time.sleep(0.2)


def state(metrics: StreamMetrics, query: str, name: str) -> float:
    return metrics.value("query_state", query=query, sensorpipe_stream_query_state=name)


def test_batches_are_exported_served_and_logged_once_each(
    spark: SparkSession, metrics: StreamMetrics, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F

    caplog.set_level(logging.DEBUG, logger="sensorpipe.stream")
    rows = rate(spark)
    late = F.col("timestamp") - F.expr("INTERVAL 1 HOUR")
    events = rows.withColumn("event_time", F.when(F.col("value") % 5 == 0, late).otherwise(F.col("timestamp")))
    windows = events.withWatermark("event_time", "10 seconds").groupBy(F.window("event_time", "1 minute")).count()
    query = (
        windows.writeStream.queryName("aggregates")
        .outputMode("append")
        .format("memory")
        .option("checkpointLocation", str(tmp_path))
        .trigger(processingTime="500 milliseconds")
        .start()
    )
    try:
        wait_for(
            lambda: (
                metrics.value("batches_total", query="aggregates") >= 3
                and metrics.value("dropped_late_rows_total", query="aggregates") > 0
            ),
            "three batches with late rows dropped",
        )
    finally:
        query.stop()
    # The terminated event comes after every progress event of the query.
    wait_for(lambda: state(metrics, "aggregates", "terminated") == 1, "terminated state")

    batches = metrics.value("batches_total", query="aggregates")
    assert metrics.value("input_rows_total", query="aggregates") > 0
    assert metrics.value("batch_duration_seconds_count", query="aggregates") == batches
    assert metrics.value("batch_duration_seconds_sum", query="aggregates") > 0
    assert metrics.value("last_batch_id", query="aggregates") >= 2
    assert metrics.value("last_progress_timestamp_seconds", query="aggregates") > time.time() - TIMEOUT_S - 30
    assert metrics.value("event_time_lag_seconds", query="aggregates") >= 0
    assert state(metrics, "aggregates", "active") == 0

    lines = [r.getMessage() for r in caplog.records if re.match(r"aggregates #\d+: ", r.getMessage())]
    assert len(lines) == batches, lines
    with_rows = [r for r in caplog.records if r.levelno == logging.INFO and re.match(r"aggregates #\d+: \d", r.message)]
    assert with_rows and all(" rows in " in r.message and "rows/s in" in r.message for r in with_rows)
    assert any("late rows dropped" in line for line in lines)
    assert any(r.getMessage() == "aggregates stopped" for r in caplog.records)

    port = free_port()
    server = serve_metrics(metrics.registry, "127.0.0.1", port, "stream.metrics_port")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert f'sensorpipe_stream_batches_total{{query="aggregates"}} {batches}' in body
    assert 'sensorpipe_stream_query_state{query="aggregates",sensorpipe_stream_query_state="terminated"} 1.0' in body


def test_a_failing_query_sets_its_state_and_logs_the_error_once(
    spark: SparkSession, metrics: StreamMetrics, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from pyspark.errors import StreamingQueryException

    def write(_batch: DataFrame, batch_id: int) -> None:
        if batch_id >= 1:
            raise RuntimeError("database down")

    caplog.set_level(logging.INFO, logger="sensorpipe.stream")
    query = (
        rate(spark)
        .writeStream.queryName("database")
        .foreachBatch(write)
        .option("checkpointLocation", str(tmp_path))
        .trigger(processingTime="500 milliseconds")
        .start()
    )
    with pytest.raises(StreamingQueryException):
        query.awaitTermination(TIMEOUT_S)
    wait_for(lambda: state(metrics, "database", "failed") == 1, "failed state")

    assert state(metrics, "database", "active") == 0
    assert metrics.value("batches_total", query="database") >= 1
    errors = [r for r in caplog.records if r.name == "sensorpipe.stream" and r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].getMessage() == "database failed [FOREACH_BATCH_USER_FUNCTION_ERROR]: RuntimeError: database down"
