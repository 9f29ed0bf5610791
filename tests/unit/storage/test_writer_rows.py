"""Pure parts of the database writer: Arrow and rows into COPY rows, time rules, error classification."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pyarrow as pa
import pytest
from psycopg import errors

from sensorpipe.config import PostgresSettings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.storage.writer import InvalidBatch, StorageError, explain, is_transient, reading_rows

RAW = json.dumps({"sensor_id": "s1", "temperature": 21.5, "meta": {"fw": "1.2"}})
PLUS_TWO = timezone(timedelta(hours=2))


def row(time: object, raw: object = RAW) -> tuple[object, ...]:
    return (time, "s1", 21.5, 40.0, raw, "payload", 0, 7)


def arrow_batch(times: list[datetime], time_type: pa.DataType) -> pa.Table:
    n = len(times)
    return pa.table(
        {
            "kafka_offset": pa.array(range(n), pa.int64()),  # out of order on purpose: columns are taken by name
            "time": pa.array(times, time_type),
            "sensor_id": pa.array(["s1"] * n),
            "temperature": pa.array([21.5] * n),
            "humidity": pa.array([None] * n, pa.float64()),
            "raw_data": pa.array([RAW] * n),
            "time_source": pa.array(["payload"] * n),
            "kafka_partition": pa.array([3] * n, pa.int32()),
        }
    )


def test_arrow_columns_are_taken_by_name_and_times_come_out_in_utc() -> None:
    local = datetime(2026, 11, 27, 16, 0, 0, 123456, tzinfo=PLUS_TWO)
    rows = reading_rows(arrow_batch([local], pa.timestamp("us", tz="+02:00")))
    assert len(rows) == 1
    time, sensor, temperature, humidity, raw, source, partition, offset = rows[0]
    assert time.utcoffset() == timedelta(0)
    assert time.replace(tzinfo=None) == datetime(2026, 11, 27, 14, 0, 0, 123456)
    assert (sensor, temperature, humidity, raw, source, partition, offset) == ("s1", 21.5, None, RAW, "payload", 3, 0)


def test_arrow_record_batch_is_accepted() -> None:
    table = arrow_batch([datetime(2026, 1, 1, tzinfo=UTC)], pa.timestamp("ms", tz="UTC"))
    assert reading_rows(table.to_batches()[0])[0][0] == datetime(2026, 1, 1, tzinfo=UTC)


def test_naive_arrow_timestamps_are_refused() -> None:
    with pytest.raises(InvalidBatch, match="naive timestamps are refused"):
        reading_rows(arrow_batch([datetime(2026, 1, 1)], pa.timestamp("us")))


def test_arrow_batch_missing_a_column_names_it() -> None:
    table = arrow_batch([datetime(2026, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")).drop_columns(["raw_data"])
    with pytest.raises(InvalidBatch, match="lacks column\\(s\\) raw_data"):
        reading_rows(table)


def test_rows_keep_their_order_and_aware_times_of_any_offset() -> None:
    rows = [row(datetime(2026, 1, 1, 12, tzinfo=PLUS_TWO)), row(datetime(2026, 1, 1, 10, tzinfo=UTC))]
    out = reading_rows(iter(rows))
    assert out == rows
    assert out[0][0] == out[1][0]  # the same instant, whatever the offset


@pytest.mark.parametrize("bad", [datetime(2026, 1, 1), "2026-01-01T00:00:00Z", 1_790_000_000.0])
def test_naive_or_non_datetime_times_are_refused_naming_the_row(bad: object) -> None:
    rows = [row(datetime(2026, 1, 1, tzinfo=UTC)), row(bad)]
    with pytest.raises(InvalidBatch, match="row 1: time is") as caught:
        reading_rows(rows)
    assert "astimezone(timezone.utc)" in str(caught.value)


@pytest.mark.parametrize("raw", [{"temperature": 1}, b'{"temperature": 1}', None])
def test_raw_data_must_be_json_text(raw: object) -> None:
    with pytest.raises(InvalidBatch, match=r"row 0: raw_data is .*expected the JSON text"):
        reading_rows([row(datetime(2026, 1, 1, tzinfo=UTC), raw)])


def test_rows_of_the_wrong_width_are_refused() -> None:
    with pytest.raises(InvalidBatch, match=f"expected {len(READING_COLUMNS)}"):
        reading_rows([(datetime(2026, 1, 1, tzinfo=UTC), "s1")])


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (errors.AdminShutdown("terminating connection due to administrator command"), True),  # 57P01
        (errors.CannotConnectNow("the database system is starting up"), True),  # 57P03
        (errors.SerializationFailure(), True),  # 40001
        (errors.DeadlockDetected(), True),  # 40P01
        (errors.ConnectionFailure(), True),  # 08006
        (errors.TooManyConnections(), True),  # 53300
        (psycopg.OperationalError("connection failed: Connection refused"), True),
        (psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"), True),
        (psycopg.OperationalError('FATAL:  password authentication failed for user "w"'), False),
        (psycopg.OperationalError('FATAL:  database "nodb" does not exist'), False),
        (errors.UndefinedTable('relation "sensor_data" does not exist'), False),  # 42P01
        (errors.InsufficientPrivilege(), False),  # 42501
        (errors.InvalidTextRepresentation(), False),  # 22P02: invalid JSON
        (errors.CheckViolation(), False),  # 23514
        (ValueError("not a database error"), False),
    ],
)
def test_transient_or_permanent_by_sqlstate(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_permanent_errors_name_the_fix() -> None:
    pg = PostgresSettings(port=5999)
    missing = explain(pg, "writer", errors.UndefinedTable('relation "sensor_data" does not exist'))
    assert "sensor_data" in str(missing)
    assert "sensordb at 127.0.0.1:5999: run `sensorpipe db migrate`" in str(missing)
    login = explain(pg, "writer", psycopg.OperationalError('FATAL:  password authentication failed for user "w"'))
    assert "postgres.writer_user/writer_password" in str(login)
    assert isinstance(explain(pg, "writer", errors.CheckViolation("out of range")), InvalidBatch)
    assert isinstance(explain(pg, "writer", errors.InternalError("boom")), StorageError)
    unloaded = explain(pg, "writer", errors.lookup("XX000")('extension "timescaledb" must be preloaded'))
    assert "sensordb at 127.0.0.1:5999 uses TimescaleDB, which this server does not preload" in str(unloaded)
    assert "shared_preload_libraries" in str(unloaded)
