"""Decode and validate Kafka records into readings and rejects: Arrow in, Arrow out, in the executors.

Spark's executors hand each partition of a micro-batch's Kafka rows to a Python worker as Arrow record
batches (`mapInArrow`, stream/sinks.py); `decode_batch` applies the data contract's decoder
(contract/reference.py) to each record and gives one row per reading candidate: a single reading, or each
element of a gateway batch (a JSON array). A row is valid when `reason` is null.

Why the contract's own decoder rather than Spark Column expressions (the design until 2026-12-08): written
as several hundred expressions, the decode was analysed, optimised, planned and code-generated again in
every micro-batch, about 2.7 CPU-seconds per batch whatever its size, more than half of the job's CPU at
the rates a fleet sends (docs/performance.md, "Hot path"). Here the plan Spark makes per batch is a Kafka
scan and one `mapInArrow`; each reading costs the Python decode instead. And the contract has one
implementation: what the tests check the decoder against record by record is what the job runs.

Columns (DECODED_SCHEMA): the storage writer's READING_COLUMNS and REJECT_COLUMNS, and `encoding` (one of
contract.encodings.ENCODINGS). Every record has exactly one row with `element` 0: count those per encoding
for the metrics. Rows come in record order, a record's in element order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from sensorpipe.contract.columns import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.contract.measurements import MEASUREMENTS
from sensorpipe.contract.reference import Reading, Record, Reject, Rules, decode

__all__ = ["DECODED_COLUMNS", "DECODED_SCHEMA", "ENCODING", "KAFKA_COLUMNS", "decode_batch"]

KAFKA_COLUMNS = ("value", "topic", "partition", "offset", "timestamp", "headers")
"""The Kafka source's columns the decode reads (read with `includeHeaders`; the key is not read: the
bridge derives it by the same identity rule, and for a gateway batch it names the gateway)."""
ENCODING = "encoding"
DECODED_COLUMNS = (*dict.fromkeys((*READING_COLUMNS, *REJECT_COLUMNS, ENCODING)),)

_TYPES = {
    "time": pa.timestamp("us", tz="UTC"),
    "payload": pa.binary(),
    "kafka_partition": pa.int32(),
    "kafka_offset": pa.int64(),
    "element": pa.int32(),
    **{measurement.name: pa.float64() for measurement in MEASUREMENTS},
}
DECODED_SCHEMA = pa.schema([(name, _TYPES.get(name, pa.string())) for name in DECODED_COLUMNS])
_UTC_MICROS = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_HEADERS: tuple[tuple[str, bytes | None], ...] = ()


def _column(kafka: pa.RecordBatch | pa.Table, name: str) -> list[Any]:
    return kafka.column(name).to_pylist() if name in kafka.schema.names else [None] * kafka.num_rows


def _chunk(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _headers(kafka: pa.RecordBatch | pa.Table) -> list[tuple[tuple[str, bytes | None], ...]]:
    """Each row's Kafka headers as (key, value) pairs: read column by column, not as a dict per header."""
    if "headers" not in kafka.schema.names:
        return [_NO_HEADERS] * kafka.num_rows
    lists = _chunk(kafka.column("headers"))
    pairs = list(zip(lists.values.field("key").to_pylist(), lists.values.field("value").to_pylist(), strict=True))
    bounds = lists.offsets.to_pylist()
    present = lists.is_valid().to_pylist()
    return [tuple(pairs[bounds[i] : bounds[i + 1]]) if present[i] else _NO_HEADERS for i in range(kafka.num_rows)]


def _kafka_times(kafka: pa.RecordBatch | pa.Table) -> list[datetime]:
    """Each row's Kafka timestamp; one without a zone is taken as UTC (Spark sends the session's, UTC)."""
    micros = _chunk(kafka.column("timestamp")).cast(_UTC_MICROS).cast(pa.int64()).to_pylist()
    return [_EPOCH if us is None else _EPOCH + timedelta(microseconds=us) for us in micros]


def decode_batch(kafka: pa.RecordBatch | pa.Table, rules: Rules) -> pa.Table:
    """Every reading candidate of the Kafka rows `kafka` (KAFKA_COLUMNS), as DECODED_SCHEMA.

    Without `headers` there is no topic id and no receive time: the default id and the Kafka timestamp
    stand in.
    """
    columns: dict[str, list[Any]] = {name: [] for name in DECODED_COLUMNS}
    times, sensors, sources, raw = columns["time"], columns["sensor_id"], columns["time_source"], columns["raw_data"]
    measurements = [(columns[m.name], m.name) for m in rules.measurements]
    reasons, details, payloads = columns["reason"], columns["detail"], columns["payload"]
    topics, partitions, offsets = columns["kafka_topic"], columns["kafka_partition"], columns["kafka_offset"]
    elements, encodings = columns["element"], columns[ENCODING]
    records = zip(
        _column(kafka, "value"),
        _column(kafka, "topic"),
        _column(kafka, "partition"),
        _column(kafka, "offset"),
        _kafka_times(kafka),
        _headers(kafka),
        strict=True,
    )
    for value, topic, partition, offset, stamp, headers in records:
        decoded = decode(Record(value, stamp, headers, topic or "", partition, offset), rules)
        candidates: list[Reading | Reject] = [*decoded.readings, *decoded.rejects]
        if decoded.readings and decoded.rejects:
            candidates.sort(key=lambda c: c.element)
        for candidate in candidates:
            if isinstance(candidate, Reading):
                times.append(candidate.time_us)
                sensors.append(candidate.sensor_id)
                sources.append(candidate.time_source)
                raw.append(candidate.raw_data)
                for found, name in measurements:
                    found.append(candidate.values[name])
                reasons.append(None)
                details.append(None)
                payloads.append(None)
            else:
                times.append(None)
                sensors.append(None)
                sources.append(None)
                raw.append(None)
                for found, _ in measurements:
                    found.append(None)
                reasons.append(candidate.reason.value)
                details.append(candidate.detail)
                payloads.append(candidate.payload)
            topics.append(topic)
            partitions.append(partition)
            offsets.append(offset)
            elements.append(candidate.element)
            encodings.append(decoded.encoding)
    arrays = {
        name: pa.array(found, pa.int64()).cast(_UTC_MICROS)
        if name == "time"
        else pa.array(found, _TYPES.get(name, pa.string()))
        for name, found in columns.items()
    }
    return pa.table(arrays, schema=DECODED_SCHEMA)
