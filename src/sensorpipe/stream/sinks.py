"""What the stream job's executors run: each partition of a micro-batch written by its own DatabaseWriter.

Nothing here runs on the driver and nothing is collected to it (DESIGN.md: "the database sink writes
from executors with COPY"). Functions are built per query from the settings and shipped to the Python
workers by Spark, so they hold no connection until a partition arrives.

Times cross the JVM → Python boundary as epoch microseconds, not as `TimestampType`: PySpark turns
timestamps into naive *local* datetimes, which the writer rightly refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from sensorpipe.config import PostgresSettings
from sensorpipe.storage.writer import AGGREGATE_COLUMNS, READING_COLUMNS, REJECT_COLUMNS, DatabaseWriter

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK_ROWS = 50_000
"""Rows per COPY transaction: large enough for COPY's speed, small enough to retry cheaply."""

MICROS_SUFFIX = "_us"
"""A timestamp column `c` reaches the executors as `c_us`, epoch microseconds (see module docstring)."""

PartitionWriter = Callable[[Iterable[Any]], None]


def from_micros(value: int) -> datetime:
    """Epoch microseconds as an aware UTC datetime, exactly (no float rounding)."""
    return EPOCH + timedelta(microseconds=value)


def chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def as_writer_rows(rows: Iterable[Any], columns: Sequence[str], time_column: str) -> Iterator[tuple[Any, ...]]:
    """Spark Rows (with `<time>_us`) as tuples in the writer's column order, the time made aware."""
    for row in rows:
        values = row.asDict()
        values[time_column] = from_micros(values.pop(time_column + MICROS_SUFFIX))
        yield tuple(values[name] for name in columns)


def _partition_writer(
    settings: PostgresSettings,
    purpose: str,
    rows_of: Callable[[Iterable[Any]], Iterator[tuple[Any, ...]]],
    store: Callable[[DatabaseWriter, list[tuple[Any, ...]]], object],
) -> PartitionWriter:
    """A `foreachPartition` function: one writer (one connection) per partition, COPY in chunks."""

    def write(rows: Iterable[Any]) -> None:
        with DatabaseWriter(settings, application_name=f"sensorpipe-stream-{purpose}") as writer:
            for chunk in chunks(rows_of(rows), CHUNK_ROWS):
                store(writer, chunk)

    return write


def readings_writer(settings: PostgresSettings) -> PartitionWriter:
    """Stores valid readings (idempotent on `(sensor_id, time)`)."""
    return _partition_writer(
        settings, "readings", lambda rows: as_writer_rows(rows, READING_COLUMNS, "time"), DatabaseWriter.write_readings
    )


def aggregates_writer(settings: PostgresSettings) -> PartitionWriter:
    """Upserts one-minute aggregates (a window emitted again replaces itself)."""
    return _partition_writer(
        settings,
        "aggregates",
        lambda rows: as_writer_rows(rows, AGGREGATE_COLUMNS, "bucket"),
        DatabaseWriter.write_aggregates,
    )


def rejects_writer(settings: PostgresSettings) -> PartitionWriter:
    """Stores rejects (idempotent on their Kafka coordinates and element)."""
    return _partition_writer(
        settings,
        "rejects",
        lambda rows: (tuple(row[name] for name in REJECT_COLUMNS) for row in rows),
        DatabaseWriter.write_rejects,
    )
