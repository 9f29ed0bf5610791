"""What executors hand the writer: exact UTC times from epoch microseconds, columns in the writer's order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import Row

from sensorpipe.storage.writer import READING_COLUMNS
from sensorpipe.stream.sinks import as_writer_rows, chunks, from_micros


def test_micros_become_exact_aware_utc_datetimes() -> None:
    moment = datetime(2026, 11, 27, 23, 59, 59, 999_999, tzinfo=UTC)
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert from_micros(micros) == moment
    assert from_micros(micros).utcoffset() is not None
    assert from_micros(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_spark_rows_come_out_in_the_writer_column_order() -> None:
    row = Row(
        sensor_id="s-1",
        time_us=1_795_818_162_171_000,
        humidity=40.0,
        temperature=21.5,
        raw_data='{"t": 1}',
        time_source="payload",
        kafka_offset=7,
        kafka_partition=2,
    )
    (values,) = list(as_writer_rows([row], READING_COLUMNS, "time"))
    assert values == (
        datetime(2026, 11, 27, 22, 22, 42, 171_000, tzinfo=UTC),
        "s-1",
        21.5,
        40.0,
        '{"t": 1}',
        "payload",
        2,
        7,
    )


def test_chunks_cover_every_row_once() -> None:
    assert [len(c) for c in chunks(range(120_001), 50_000)] == [50_000, 50_000, 20_001]
    assert list(chunks([], 10)) == []
