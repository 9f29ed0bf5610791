"""What the stream job's queries do, as Prometheus metrics and one log line per batch (problem 8).

Spark reports each micro-batch as a progress document. `summarize_progress` turns one into the
numbers worth watching (a pure function, tested on real documents without a JVM), `StreamMetrics`
exports them, and `ProgressListener` wires both to a SparkSession's listener bus.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.registry import Collector
from pyspark import SparkContext
from pyspark.sql.streaming.listener import JStreamingQueryListener, StreamingQueryListener

if TYPE_CHECKING:
    from py4j.java_gateway import JavaObject
    from pyspark.sql.streaming.listener import (
        QueryIdleEvent,
        QueryProgressEvent,
        QueryStartedEvent,
        QueryTerminatedEvent,
    )

logger = logging.getLogger("sensorpipe.stream")

# Trigger start to commit: from a few milliseconds (idle) to minutes (a stalled sink).
BATCH_DURATION_BUCKETS_S = (
    0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
# A reading's own timestamp → stored in the database: sub-second when keeping up, hours for a backlog.
READING_LATENCY_BUCKETS_S = (
    0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
QUERY_STATES = ("active", "idle", "terminated", "failed")

# The line of a Python traceback that names the exception ("RuntimeError: database down").
_PYTHON_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*$")


@dataclass(frozen=True)
class BatchSummary:
    """The numbers of one progress report that tell whether a query keeps up; None where Spark gave none."""

    query: str
    batch_id: int
    timestamp: datetime | None
    input_rows: int
    input_rows_per_s: float | None
    processed_rows_per_s: float | None
    duration_s: float | None
    output_rows: int | None
    dropped_late_rows: int
    kafka_lag: int | None
    newest_event_time: datetime | None
    event_time_lag_s: float | None

    def line(self) -> str:
        """The concise log line, e.g. `lake #42: 12,345 rows in 0.84 s (14,700 rows/s in, 14,690 processed)`."""
        parts = [f"{self.query} #{self.batch_id}: {self.input_rows:,} rows"]
        if self.duration_s is not None:
            parts.append(f" in {self.duration_s:.2f} s")
        if self.input_rows_per_s is not None and self.processed_rows_per_s is not None:
            parts.append(f" ({self.input_rows_per_s:,.0f} rows/s in, {self.processed_rows_per_s:,.0f} processed)")
        if self.kafka_lag is not None:
            parts.append(f", lag {self.kafka_lag:,} offsets")
        if self.event_time_lag_s is not None:
            parts.append(f", event time {self.event_time_lag_s:,.1f} s behind")
        if self.dropped_late_rows:
            parts.append(f", {self.dropped_late_rows:,} late rows dropped")
        return "".join(parts)


def summarize_progress(progress: Mapping[str, Any]) -> BatchSummary:
    """The summary of one `StreamingQueryProgress` JSON document (`json.loads(progress.json)`).

    Spark leaves out what it does not know (NaN rates, `eventTime` without a watermark or event-time
    column, `metrics` of sources that report none), so every field but the batch id may be missing.
    """
    timestamp = _instant(progress.get("timestamp"))
    duration_ms = (progress.get("durationMs") or {}).get("triggerExecution")
    duration_s = None if duration_ms is None else duration_ms / 1000
    newest = _instant((progress.get("eventTime") or {}).get("max"))
    event_time_lag_s = None
    if newest is not None and timestamp is not None:
        # Measured when the batch ended, i.e. when the listener hears of it.
        finished = timestamp + timedelta(seconds=duration_s or 0.0)
        event_time_lag_s = max((finished - newest).total_seconds(), 0.0)
    sink_rows = (progress.get("sink") or {}).get("numOutputRows")
    return BatchSummary(
        query=str(progress.get("name") or progress.get("id") or "unnamed"),
        batch_id=int(progress["batchId"]),
        timestamp=timestamp,
        input_rows=int(progress.get("numInputRows") or 0),
        input_rows_per_s=_number(progress.get("inputRowsPerSecond")),
        processed_rows_per_s=_number(progress.get("processedRowsPerSecond")),
        duration_s=duration_s,
        # -1: a sink that cannot count (foreachBatch); the job counts those itself.
        output_rows=None if sink_rows is None or sink_rows < 0 else int(sink_rows),
        dropped_late_rows=sum(
            int(op.get("numRowsDroppedByWatermark") or 0) for op in progress.get("stateOperators", [])
        ),
        kafka_lag=_kafka_lag(progress.get("sources") or []),
        newest_event_time=newest,
        event_time_lag_s=event_time_lag_s,
    )


def _instant(text: str | None) -> datetime | None:
    """Spark's ISO-8601 UTC timestamps (`2026-11-27T23:07:08.436Z`)."""
    return None if text is None else datetime.fromisoformat(text)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _kafka_lag(sources: list[Mapping[str, Any]]) -> int | None:
    """Records in Kafka not yet read, summed over the partitions of every Kafka source; None without one.

    Kafka offsets come as `{topic: {partition: offset}}`: lag is `latestOffset - endOffset` per
    partition. Without `latestOffset`, the source's `avgOffsetsBehindLatest` metric times its partitions.
    """
    lags: list[int] = []
    for source in sources:
        end = _partition_offsets(source.get("endOffset"))
        if end is None:
            continue
        latest = _partition_offsets(source.get("latestOffset"))
        average = (source.get("metrics") or {}).get("avgOffsetsBehindLatest")
        if latest is not None:
            lags.append(sum(max(offset - end.get(key, offset), 0) for key, offset in latest.items()))
        elif average is not None:
            lags.append(round(float(average) * len(end)))
    return sum(lags) if lags else None


def _partition_offsets(offsets: Any) -> dict[tuple[str, str], int] | None:
    """`{topic: {partition: offset}}` flattened; None for any other source's offsets (a number, a string)."""
    if isinstance(offsets, str):
        try:
            offsets = json.loads(offsets)
        except ValueError:
            return None
    if not isinstance(offsets, dict) or not all(isinstance(partitions, dict) for partitions in offsets.values()):
        return None
    return {
        (topic, partition): int(offset)
        for topic, partitions in offsets.items()
        for partition, offset in partitions.items()
    }


def failure_message(exception: str) -> str:
    """One line out of the text Spark gives for a failed query: a Python error's own line, else the first."""
    lines = [line.strip() for line in exception.splitlines() if line.strip()]
    python_errors = [line for line in lines if _PYTHON_ERROR_LINE.match(line)]
    return python_errors[-1] if "Traceback (most recent call last)" in exception and python_errors else lines[0]


class CountedHistogram(Collector):
    """A histogram fed with bucket counts rather than single observations.

    The partition writers bucket their readings' latencies on the executors (a Spark accumulator brings
    the counts back); observing each of them again on the driver would cost a call per reading.
    """

    def __init__(self, name: str, documentation: str, bounds: tuple[float, ...], registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, the last one +Inf
        self.sum = 0.0
        self._lock = threading.Lock()  # batches add from Spark's thread, scrapes read from the server's
        registry.register(self)

    def add(self, per_bucket: Mapping[int, int], total: float) -> None:
        """Count `per_bucket[i]` more observations in bucket i (non-cumulative), whose values sum to `total`."""
        with self._lock:
            for index, n in per_bucket.items():
                self.counts[index] += n
            self.sum += total

    def collect(self) -> list[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self.counts), self.sum
        cumulative, running = [], 0
        for bound, n in zip((*(str(b) for b in self.bounds), "+Inf"), counts, strict=True):
            running += n
            cumulative.append((bound, float(running)))
        return [HistogramMetricFamily(self.name, self.documentation, buckets=cumulative, sum_value=total)]


class StreamMetrics:
    """One registry per stream job, so that several jobs (or tests) in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        q = ["query"]
        self.batches = Counter("sensorpipe_stream_batches", "micro-batches reported", q, registry=r)
        self.input_rows = Counter("sensorpipe_stream_input_rows", "rows read from the sources", q, registry=r)
        self.batch_rows = Gauge("sensorpipe_stream_batch_rows", "rows read by the last batch", q, registry=r)
        self.input_rate = Gauge(
            "sensorpipe_stream_input_rows_per_second", "rate at which rows arrived, last batch", q, registry=r
        )
        self.processed_rate = Gauge(
            "sensorpipe_stream_processed_rows_per_second",
            "rate at which rows were processed, last batch",
            q,
            registry=r,
        )
        self.batch_duration = Histogram(
            "sensorpipe_stream_batch_duration_seconds",
            "trigger execution time of a micro-batch",
            q,
            buckets=BATCH_DURATION_BUCKETS_S,
            registry=r,
        )
        self.sink_rows = Counter(
            "sensorpipe_stream_sink_rows",
            "rows written, by sink (database, lake, aggregates, aggregates_lake)",
            ["sink"],
            registry=r,
        )
        self.dropped_late = Counter(
            "sensorpipe_stream_dropped_late_rows",
            "rows a stateful operator dropped behind the watermark (after partial aggregation)",
            q,
            registry=r,
        )
        self.rejected = Counter(
            "sensorpipe_stream_rejected_rows", "rows sent to the dead-letter path", ["reason"], registry=r
        )
        self.encodings = Counter(
            "sensorpipe_stream_encoded_rows", "Kafka records by the payload encoding detected", ["encoding"], registry=r
        )
        self.kafka_lag = Gauge("sensorpipe_stream_kafka_lag_offsets", "Kafka records not yet read", q, registry=r)
        self.event_time_lag = Gauge(
            "sensorpipe_stream_event_time_lag_seconds", "now minus the newest event time seen", q, registry=r
        )
        self.last_batch_id = Gauge("sensorpipe_stream_last_batch_id", "id of the last reported batch", q, registry=r)
        self.last_progress = Gauge(
            "sensorpipe_stream_last_progress_timestamp_seconds",
            "when the last batch started (Unix time)",
            q,
            registry=r,
        )
        self.state = Enum(
            "sensorpipe_stream_query_state", "state of the query", q, states=list(QUERY_STATES), registry=r
        )
        self.lake_commit_duration = Histogram(
            "sensorpipe_stream_lake_commit_duration_seconds",
            "staged readings to a Delta commit of the lake's raw",
            buckets=BATCH_DURATION_BUCKETS_S,
            registry=r,
        )
        self.last_lake_commit = Gauge(
            "sensorpipe_stream_last_lake_commit_timestamp_seconds",
            "when the last lake commit of raw ended (Unix time)",
            registry=r,
        )
        self.reading_latency = CountedHistogram(
            "sensorpipe_stream_reading_latency_seconds",
            "reading's own timestamp to stored in the database (end to end, as the sensor sees it)",
            READING_LATENCY_BUCKETS_S,
            registry=r,
        )

    def record(self, summary: BatchSummary) -> None:
        """Export one batch's summary."""
        query = summary.query
        self.batches.labels(query).inc()
        self.input_rows.labels(query).inc(summary.input_rows)
        self.batch_rows.labels(query).set(summary.input_rows)
        self.last_batch_id.labels(query).set(summary.batch_id)
        self.state.labels(query).state("active")
        if summary.input_rows_per_s is not None:
            self.input_rate.labels(query).set(summary.input_rows_per_s)
        if summary.processed_rows_per_s is not None:
            self.processed_rate.labels(query).set(summary.processed_rows_per_s)
        if summary.duration_s is not None:
            self.batch_duration.labels(query).observe(summary.duration_s)
        if summary.output_rows is not None:
            self.sink_rows.labels(query).inc(summary.output_rows)
        if summary.dropped_late_rows:
            self.dropped_late.labels(query).inc(summary.dropped_late_rows)
        if summary.kafka_lag is not None:
            self.kafka_lag.labels(query).set(summary.kafka_lag)
        if summary.event_time_lag_s is not None:
            self.event_time_lag.labels(query).set(summary.event_time_lag_s)
        if summary.timestamp is not None:
            self.last_progress.labels(query).set(summary.timestamp.timestamp())

    def count_rejects(self, n: int, reason: str) -> None:
        """Rows the job sent to the dead-letter path, by their machine-readable reason."""
        self.rejected.labels(reason).inc(n)

    def count_encoding(self, n: int, label: str) -> None:
        """Kafka records by the encoding the job detected (raw JSON, base64, envelope ...)."""
        self.encodings.labels(label).inc(n)

    def count_sink_rows(self, sink: str, n: int) -> None:
        """Rows a sink wrote that Spark cannot count itself (foreachBatch reports -1)."""
        self.sink_rows.labels(sink).inc(n)

    def record_lake_commit(self, rows: int, duration_s: float) -> None:
        """One commit of staged readings to the lake's raw (stream/lake_commit.py)."""
        self.sink_rows.labels("lake").inc(rows)
        self.lake_commit_duration.observe(duration_s)
        self.last_lake_commit.set(time.time())

    def count_latencies(self, tallied: Mapping[str, int]) -> None:
        """Readings per latency bucket as the partition writers tallied them (`sinks.latency_buckets`)."""
        per_bucket = {int(label): n for label, n in tallied.items() if label.isdigit()}
        self.reading_latency.add(per_bucket, tallied.get("sum_ms", 0) / 1000)

    def observe_event_time(self, query: str, newest: datetime) -> None:
        """Event-time lag from the newest event time the job saw, for queries whose progress has none."""
        self.event_time_lag.labels(query).set(max(time.time() - newest.timestamp(), 0.0))

    def value(self, name: str, **labels: str) -> float:
        """Current value of a metric's sample, 0 when absent, e.g. `value("batches_total", query="lake")`."""
        return self.registry.get_sample_value(f"sensorpipe_stream_{name}", labels) or 0.0


class ProgressListener(StreamingQueryListener):
    """Exports every query's progress to `metrics` and logs one line per batch (INFO when rows came in).

    Register with `spark.streams.addListener(ProgressListener(metrics))`; Spark calls it from its
    listener bus, one event at a time, for every query of the session.
    """

    def __init__(self, metrics: StreamMetrics) -> None:
        self.metrics = metrics
        self._names: dict[str, str] = {}  # query id → name: idle and terminated events carry only the id

    def onQueryStarted(self, event: QueryStartedEvent) -> None:
        name = event.name or str(event.id)
        self._names[str(event.id)] = name
        self.metrics.state.labels(name).state("active")
        logger.info("%s started (id %s)", name, event.id)

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        self.record_progress(event.progress.json)

    def record_progress(self, progress_json: str) -> None:
        """Export and log one batch from its progress document."""
        summary = summarize_progress(json.loads(progress_json))
        self.metrics.record(summary)
        # Spark also reports batches that read nothing (watermark moves, idle heartbeats): DEBUG.
        logger.log(logging.INFO if summary.input_rows else logging.DEBUG, "%s", summary.line())

    @property
    def _jlistener(self) -> JavaObject:
        """The JVM side pyspark registers: one that hands progress over as JSON (see `_JsonProgress`)."""
        if not hasattr(self, "_jlistenerobj"):
            jvm = SparkContext._jvm
            assert jvm is not None, "a SparkSession must exist before a listener is added"
            self._jlistenerobj = jvm.PythonStreamingQueryListenerWrapper(_JsonProgress(self))
        return self._jlistenerobj

    def onQueryIdle(self, event: QueryIdleEvent) -> None:
        self.metrics.state.labels(self._name(event.id)).state("idle")

    def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:
        name = self._name(event.id)
        if event.exception is None:
            self.metrics.state.labels(name).state("terminated")
            logger.info("%s stopped", name)
            return
        self.metrics.state.labels(name).state("failed")
        error_class = f" [{event.errorClassOnException}]" if event.errorClassOnException else ""
        logger.error("%s failed%s: %s", name, error_class, failure_message(event.exception))

    def _name(self, query_id: object) -> str:
        return self._names.get(str(query_id), str(query_id))


class _JsonProgress(JStreamingQueryListener):
    """pyspark's py4j callback, except that a progress event crosses as one JSON string.

    pyspark rebuilds each progress event in Python from the Java object, a py4j round trip per field,
    and resolves JVM names that make the JVM scan every jar of the class path for classes that do not
    exist. Profiled at one reading per Kafka record (2026-12-06, JFR), that was a tenth of the stream
    job's JVM CPU, on the machine's two cores with every micro-batch. `json()` is two calls.
    """

    pylistener: ProgressListener

    def onQueryProgress(self, jevent: JavaObject) -> None:
        self.pylistener.record_progress(jevent.progress().json())


__all__ = ["BatchSummary", "ProgressListener", "StreamMetrics", "failure_message", "summarize_progress"]
