"""Spark's `decode` against the reference decoder, record by record: Kafka rows in, differences out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sensorpipe.contract.measurements import MEASUREMENTS
from sensorpipe.contract.reference import Decoded, Record, Rules, decode

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

KAFKA_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp,"
    " timestampType int, headers array<struct<key:string,value:binary>>"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Outcome = tuple[Any, ...]
"""A row of a record's outcome: (element, encoding, reason), then a reading's values or a reject's payload."""


def kafka_frame(spark: SparkSession, records: Sequence[Record]) -> DataFrame:
    """The records as rows typed like Kafka's source (read with `includeHeaders`)."""
    rows = [
        (
            bytearray(b"k"),
            None if r.value is None else bytearray(r.value),
            r.topic,
            r.partition,
            r.offset,
            r.timestamp,
            0,
            [(key, None if value is None else bytearray(value)) for key, value in r.headers],
        )
        for r in records
    ]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def collect_by_offset(decoded: DataFrame) -> dict[int, list[Row]]:
    """Spark's output rows per Kafka offset, in element order, with `time_us` for the time."""
    from pyspark.sql import functions as F

    found: dict[int, list[Row]] = {}
    for row in decoded.select("*", F.unix_micros("time").alias("time_us")).collect():
        found.setdefault(row["offset"], []).append(row)
    return {offset: sorted(rows, key=lambda row: row["element"]) for offset, rows in found.items()}


def _json(text: str | bytes | None) -> Any:
    """JSON as a reader sees it (numbers as doubles, keys unordered); text that is not JSON stays text."""
    if text is None:
        return None
    try:
        return ("json", json.loads(text, parse_int=float, parse_float=float, parse_constant=str))
    except (ValueError, RecursionError):
        return ("text", text)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def reference_outcome(decoded: Decoded) -> list[Outcome]:
    rows: list[Outcome] = [
        (
            r.element,
            decoded.encoding,
            None,
            r.sensor_id,
            _micros(r.time),
            r.time_source,
            *(r.values[m.name] for m in MEASUREMENTS),
            _json(r.raw_data),
        )
        for r in decoded.readings
    ]
    rows += [(r.element, decoded.encoding, r.reason.value, _json(r.payload)) for r in decoded.rejects]
    return sorted(rows, key=lambda row: row[0])


def spark_outcome(rows: Iterable[Row]) -> list[Outcome]:
    out: list[Outcome] = []
    for row in rows:
        head = (row["element"], row["encoding"], row["reject_reason"])
        if row["reject_reason"] is None:
            values = (row[m.name] for m in MEASUREMENTS)
            out.append((*head, row["sensor_id"], row["time_us"], row["time_source"], *values, _json(row["raw_data"])))
        else:
            out.append((*head, _json(bytes(row["payload"]))))
    return out


def disagreements(records: Sequence[Record], spark_rows: Mapping[int, list[Row]], rules: Rules) -> list[str]:
    """Each record on which Spark's outcome is not the reference decoder's, described in one line."""
    found = []
    for record in records:
        expected = reference_outcome(decode(record, rules))
        actual = spark_outcome(spark_rows.get(record.offset, []))
        if actual != expected:
            found.append(
                f"offset {record.offset} {record.value!r:.200} headers {record.headers!r:.120}:"
                f"\n    reference {expected!r:.600}\n    spark     {actual!r:.600}"
            )
    return found
