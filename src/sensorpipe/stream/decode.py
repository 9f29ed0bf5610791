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

from collections.abc import Sequence
from datetime import UTC, datetime
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


def _column(kafka: pa.RecordBatch | pa.Table, name: str) -> list[Any]:
    return kafka.column(name).to_pylist() if name in kafka.schema.names else [None] * kafka.num_rows


def _headers(found: Sequence[dict[str, Any]] | None) -> tuple[tuple[str, bytes | None], ...]:
    return tuple((header["key"], header["value"]) for header in found or ())


def _row(candidate: Reading | Reject) -> dict[str, Any]:
    if isinstance(candidate, Reading):
        return {
            "time": candidate.time,
            "sensor_id": candidate.sensor_id,
            **candidate.values,
            "raw_data": candidate.raw_data,
            "time_source": candidate.time_source,
        }
    return {"reason": candidate.reason.value, "detail": candidate.detail, "payload": candidate.payload}


def decode_batch(kafka: pa.RecordBatch | pa.Table, rules: Rules) -> pa.Table:
    """Every reading candidate of the Kafka rows `kafka` (KAFKA_COLUMNS), as DECODED_SCHEMA.

    Without `headers` there is no topic id and no receive time: the default id and the Kafka timestamp
    stand in. A Kafka timestamp without a zone is taken as UTC (Spark sends the session's, UTC).
    """
    rows: dict[str, list[Any]] = {name: [] for name in DECODED_COLUMNS}
    stamps = kafka.column("timestamp").cast(_UTC_MICROS).to_pylist()
    records = zip(
        _column(kafka, "value"),
        _column(kafka, "topic"),
        _column(kafka, "partition"),
        _column(kafka, "offset"),
        stamps,
        _column(kafka, "headers"),
        strict=True,
    )
    for value, topic, partition, offset, stamp, headers in records:
        decoded = decode(Record(value, stamp or _EPOCH, _headers(headers), topic or "", partition, offset), rules)
        candidates: list[Reading | Reject] = [*decoded.readings, *decoded.rejects]
        for candidate in sorted(candidates, key=lambda c: c.element):
            row = _row(candidate)
            row.update(
                kafka_topic=topic,
                kafka_partition=partition,
                kafka_offset=offset,
                element=candidate.element,
                encoding=decoded.encoding,
            )
            for name in DECODED_COLUMNS:
                rows[name].append(row.get(name))
    return pa.table(rows, schema=DECODED_SCHEMA)
