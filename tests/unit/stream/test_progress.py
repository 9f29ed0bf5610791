"""Progress documents into the numbers the stream job exports and logs, without a JVM.

The documents are real: `json.loads(progress.json)` from pyspark 4.2.0 listeners on local queries
(a rate source into a watermarked one-minute window, a failing foreachBatch, Kafka 3 partitions into
the Parquet file sink with maxOffsetsPerTrigger=200), trimmed of the state store's customMetrics.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sensorpipe.stream.monitoring import StreamMetrics, failure_message, summarize_progress

# Kafka, batch 0 of a backlog: 401 records behind (286 + 115), 133.7 per partition on average.
KAFKA: dict[str, Any] = {
    "id": "0e798d4f-3842-4204-b71d-e50fd20f280b",
    "runId": "c67b8052-bb90-468b-b6d4-c020c75b89ce",
    "name": "lake",
    "timestamp": "2026-11-27T23:08:56.675Z",
    "batchId": 0,
    "batchDuration": 3037,
    "numInputRows": 199,
    "inputRowsPerSecond": 0.0,
    "processedRowsPerSecond": 65.5,
    "durationMs": {"addBatch": 2180, "commitOffsets": 39, "getBatch": 17, "latestOffset": 481,
                   "queryPlanning": 255, "triggerExecution": 3036, "walCommit": 51},
    "stateOperators": [],
    "sources": [{
        "description": "KafkaV2[Subscribe[probe]]",
        "startOffset": None,
        "endOffset": {"probe": {"0": 0, "1": 142, "2": 57}},
        "latestOffset": {"probe": {"0": 0, "1": 428, "2": 172}},
        "numInputRows": 199,
        "inputRowsPerSecond": 0.0,
        "processedRowsPerSecond": 65.5,
        "metrics": {"avgOffsetsBehindLatest": "133.7", "maxOffsetsBehindLatest": "286", "minOffsetsBehindLatest": "0"},
    }],
    "sink": {"description": "FileSink[file:/tmp/monprobe-993i4cic/lake]", "numOutputRows": -1},
}  # fmt: skip

# A rate source through withWatermark("event_time", "10 seconds") and a one-minute window, in
# append mode; every fifth row is an hour old, so the late ones of a batch are dropped (as one
# partially aggregated row).
AGGREGATES: dict[str, Any] = {
    "id": "9965ce20-ab0b-4ba8-bc26-52f7e6683f54",
    "runId": "ab4c17ec-d287-401f-93c7-100c40131fb6",
    "name": "aggregates",
    "timestamp": "2026-11-27T23:07:10.000Z",
    "batchId": 3,
    "batchDuration": 656,
    "numInputRows": 10,
    "inputRowsPerSecond": 19.3,
    "processedRowsPerSecond": 15.2,
    "durationMs": {"addBatch": 410, "commitOffsets": 49, "getBatch": 0, "latestOffset": 0, "queryPlanning": 95,
                   "triggerExecution": 656, "walCommit": 93},
    "eventTime": {"avg": "2026-11-27T22:55:08.986Z", "max": "2026-11-27T23:07:09.436Z",
                  "min": "2026-11-27T22:07:08.536Z", "watermark": "2026-11-27T23:06:58.436Z"},
    "stateOperators": [{
        "operatorName": "stateStoreSave", "numRowsTotal": 1, "numRowsUpdated": 1, "allUpdatesTimeMs": 17,
        "numRowsRemoved": 0, "allRemovalsTimeMs": 16, "commitTimeMs": 41, "memoryUsedBytes": 840,
        "numRowsDroppedByWatermark": 1, "numShufflePartitions": 1, "numStateStoreInstances": 1,
    }],
    "sources": [{
        "description": "RateStreamV2[rowsPerSecond=10, rampUpTimeSeconds=0, numPartitions=default",
        "startOffset": 2, "endOffset": 3, "latestOffset": 3, "numInputRows": 10,
        "inputRowsPerSecond": 19.3, "processedRowsPerSecond": 15.2,
    }],
    "sink": {"description": "MemorySink", "numOutputRows": 0},
}  # fmt: skip

# foreachBatch, first batch: no eventTime (no watermark), no state, the sink cannot count (-1).
DATABASE: dict[str, Any] = {
    "id": "5ea2771a-b752-4134-8d26-b2f9dc434fa9",
    "runId": "3ec4b86e-d3ee-4d7b-b018-45aaa560d364",
    "name": "database",
    "timestamp": "2026-11-27T23:07:13.048Z",
    "batchId": 0,
    "batchDuration": 97,
    "numInputRows": 0,
    "inputRowsPerSecond": 0.0,
    "processedRowsPerSecond": 0.0,
    "durationMs": {"addBatch": 21, "commitOffsets": 31, "getBatch": 0, "latestOffset": 0, "queryPlanning": 8,
                   "triggerExecution": 97, "walCommit": 34},
    "stateOperators": [],
    "sources": [{
        "description": "RateStreamV2[rowsPerSecond=10, rampUpTimeSeconds=0, numPartitions=default",
        "startOffset": None, "endOffset": 0, "latestOffset": 0, "numInputRows": 0,
        "inputRowsPerSecond": 0.0, "processedRowsPerSecond": 0.0,
    }],
    "sink": {"description": "ForeachBatchSink", "numOutputRows": -1},
}  # fmt: skip


def test_kafka_lag_is_latest_minus_end_summed_over_partitions() -> None:
    summary = summarize_progress(KAFKA)
    assert (summary.query, summary.batch_id, summary.input_rows) == ("lake", 0, 199)
    assert summary.kafka_lag == (428 - 142) + (172 - 57)
    assert summary.duration_s == pytest.approx(3.036)
    assert (summary.input_rows_per_s, summary.processed_rows_per_s) == (0.0, 65.5)
    assert summary.output_rows is None  # the file sink reports -1
    assert summary.newest_event_time is None and summary.event_time_lag_s is None
    assert summary.line() == "lake #0: 199 rows in 3.04 s (0 rows/s in, 66 processed), lag 401 offsets"


def test_kafka_lag_without_latest_offset_comes_from_the_average_metric() -> None:
    progress = copy.deepcopy(KAFKA)
    del progress["sources"][0]["latestOffset"]
    assert summarize_progress(progress).kafka_lag == 401  # 133.7 x 3 partitions


def test_kafka_source_without_lag_information_and_other_sources_have_no_lag() -> None:
    progress = copy.deepcopy(KAFKA)
    del progress["sources"][0]["latestOffset"]
    del progress["sources"][0]["metrics"]
    assert summarize_progress(progress).kafka_lag is None
    assert summarize_progress(AGGREGATES).kafka_lag is None  # a rate source's offsets are numbers


def test_kafka_offsets_given_as_json_strings_count_too() -> None:
    """pyspark's own SourceProgress keeps offsets as JSON text; the lag does not depend on which form comes in."""
    progress = copy.deepcopy(KAFKA)
    source = progress["sources"][0]
    source["endOffset"] = '{"probe":{"0":0,"1":142,"2":57}}'
    source["latestOffset"] = '{"probe":{"0":0,"1":428,"2":172}}'
    assert summarize_progress(progress).kafka_lag == 401


def test_lag_sums_over_kafka_sources_and_ignores_offsets_already_past_latest() -> None:
    progress = copy.deepcopy(KAFKA)
    second = copy.deepcopy(progress["sources"][0])
    second["endOffset"] = {"other": {"0": 10}}
    second["latestOffset"] = {"other": {"0": 5}}  # latest fetched before the batch read ahead
    progress["sources"].append(second)
    assert summarize_progress(progress).kafka_lag == 401


def test_event_time_lag_is_measured_at_the_end_of_the_batch() -> None:
    summary = summarize_progress(AGGREGATES)
    assert summary.newest_event_time == datetime(2026, 11, 27, 23, 7, 9, 436_000, tzinfo=UTC)
    assert summary.timestamp == datetime(2026, 11, 27, 23, 7, 10, tzinfo=UTC)
    # 23:07:10.000 + 0.656 s - 23:07:09.436
    assert summary.event_time_lag_s == pytest.approx(1.22)
    assert summary.dropped_late_rows == 1
    assert summary.output_rows == 0
    assert summary.line() == (
        "aggregates #3: 10 rows in 0.66 s (19 rows/s in, 15 processed), event time 1.2 s behind, 1 late rows dropped"
    )


def test_dropped_rows_are_summed_over_state_operators() -> None:
    progress = copy.deepcopy(AGGREGATES)
    progress["stateOperators"].append({**progress["stateOperators"][0], "numRowsDroppedByWatermark": 4})
    assert summarize_progress(progress).dropped_late_rows == 5


def test_watermark_only_event_time_has_no_lag() -> None:
    progress = copy.deepcopy(AGGREGATES)
    progress["eventTime"] = {"watermark": "2026-11-27T23:06:58.436Z"}  # a batch that read nothing
    summary = summarize_progress(progress)
    assert summary.newest_event_time is None and summary.event_time_lag_s is None


def test_foreach_batch_without_event_time_or_state() -> None:
    summary = summarize_progress(DATABASE)
    assert (summary.query, summary.batch_id, summary.input_rows) == ("database", 0, 0)
    assert summary.output_rows is None
    assert summary.dropped_late_rows == 0
    assert summary.event_time_lag_s is None
    assert summary.line() == "database #0: 0 rows in 0.10 s (0 rows/s in, 0 processed)"


def test_missing_fields_give_none_not_errors() -> None:
    """Spark leaves out NaN rates and empty maps; an unnamed query is known by its id."""
    summary = summarize_progress({"id": "5ea2771a", "batchId": 7})
    assert (summary.query, summary.batch_id, summary.input_rows, summary.dropped_late_rows) == ("5ea2771a", 7, 0, 0)
    assert summary.timestamp is None and summary.duration_s is None
    assert summary.input_rows_per_s is None and summary.processed_rows_per_s is None
    assert summary.kafka_lag is None and summary.output_rows is None
    assert summary.line() == "5ea2771a #7: 0 rows"


def test_metrics_from_summaries_and_from_the_job() -> None:
    metrics = StreamMetrics()
    metrics.record(summarize_progress(KAFKA))
    metrics.record(summarize_progress(AGGREGATES))
    metrics.record(summarize_progress(AGGREGATES))
    metrics.count_rejects(3, "out_of_range")
    metrics.count_encoding(10, "base64_json")
    metrics.count_sink_rows("lake", 199)
    assert metrics.value("batches_total", query="aggregates") == 2
    assert metrics.value("input_rows_total", query="lake") == 199
    assert metrics.value("kafka_lag_offsets", query="lake") == 401
    assert metrics.value("dropped_late_rows_total", query="aggregates") == 2
    assert metrics.value("sink_rows_total", sink="lake") == 199
    assert metrics.value("sink_rows_total", sink="aggregates") == 0
    assert metrics.value("batch_duration_seconds_count", query="aggregates") == 2
    assert metrics.value("rejected_rows_total", reason="out_of_range") == 3
    assert metrics.value("encoded_rows_total", encoding="base64_json") == 10
    assert metrics.value("last_progress_timestamp_seconds", query="lake") == pytest.approx(1_795_820_936.675)
    assert metrics.value("query_state", query="lake", sensorpipe_stream_query_state="active") == 1
    # Two jobs in one process: separate registries.
    assert StreamMetrics().value("batches_total", query="aggregates") == 0


def test_observed_event_time_sets_the_lag_for_queries_without_event_time() -> None:
    metrics = StreamMetrics()
    metrics.observe_event_time("database", datetime.now(UTC).replace(year=2000))
    assert metrics.value("event_time_lag_seconds", query="database") > 20 * 365 * 86400


def test_failure_message_keeps_the_python_error_line_or_the_first_line() -> None:
    python = (
        "py4j.Py4JException: An exception was raised by the Python Proxy. Return Message: Traceback (most recent"
        ' call last):\n  File "/x/py4j/clientserver.py", line 644, in _call_proxy\n'
        "    return_value = getattr(self.pool[obj_id], method)(*params)\nRuntimeError: database down\n"
        "\tat py4j.Protocol.getReturnValue(Protocol.java:476)\n"
    )
    assert failure_message(python) == "RuntimeError: database down"
    jvm = (
        "org.apache.kafka.common.errors.TimeoutException: Timeout of 60000ms expired\n\tat org.apache.kafka.X(X.java:1)"
    )
    assert failure_message(jvm) == "org.apache.kafka.common.errors.TimeoutException: Timeout of 60000ms expired"
