"""The stream job's Arrow decode against the reference decoder, record by record: Kafka rows in, differences out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from sensorpipe.contract.measurements import MEASUREMENTS
from sensorpipe.contract.reference import Decoded, Record, Rules, decode

KAFKA_ARROW = pa.schema(
    [
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("timestampType", pa.int32()),
        ("headers", pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))),
    ]
)
"""The Kafka source's rows (read with `includeHeaders`) as Spark hands them to `mapInArrow`."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Outcome = tuple[Any, ...]
"""A row of a record's outcome: (element, encoding, reason), then a reading's values or a reject's payload."""
Row = dict[str, Any]


def kafka_batch(records: Sequence[Record]) -> pa.RecordBatch:
    """The records as the Kafka source's Arrow rows."""
    rows = [
        {
            "key": b"k",
            "value": r.value,
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "timestamp": r.timestamp,
            "timestampType": 0,
            "headers": [{"key": key, "value": value} for key, value in r.headers],
        }
        for r in records
    ]
    return pa.RecordBatch.from_pylist(rows, schema=KAFKA_ARROW)


def rows_by_offset(decoded: pa.Table) -> dict[int, list[Row]]:
    """The decoded rows per Kafka offset, in element order, with `time_us` for the time."""
    found: dict[int, list[Row]] = {}
    for row in decoded.to_pylist():
        row["time_us"] = None if row["time"] is None else _micros(row["time"])
        found.setdefault(row["kafka_offset"], []).append(row)
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
            r.time_us,
            r.time_source,
            *(r.values[m.name] for m in MEASUREMENTS),
            _json(r.raw_data),
        )
        for r in decoded.readings
    ]
    rows += [(r.element, decoded.encoding, r.reason.value, _json(r.payload)) for r in decoded.rejects]
    return sorted(rows, key=lambda row: row[0])


def decoded_outcome(rows: Iterable[Row]) -> list[Outcome]:
    out: list[Outcome] = []
    for row in rows:
        head = (row["element"], row["encoding"], row["reason"])
        if row["reason"] is None:
            values = (row[m.name] for m in MEASUREMENTS)
            out.append((*head, row["sensor_id"], row["time_us"], row["time_source"], *values, _json(row["raw_data"])))
        else:
            out.append((*head, _json(bytes(row["payload"]))))
    return out


def disagreements(records: Sequence[Record], decoded: Mapping[int, list[Row]], rules: Rules) -> list[str]:
    """Each record whose decoded rows are not the reference decoder's outcome, described in one line."""
    found = []
    for record in records:
        expected = reference_outcome(decode(record, rules))
        actual = decoded_outcome(decoded.get(record.offset, []))
        if actual != expected:
            found.append(
                f"offset {record.offset} {record.value!r:.200} headers {record.headers!r:.120}:"
                f"\n    reference {expected!r:.600}\n    decoded   {actual!r:.600}"
            )
    return found
