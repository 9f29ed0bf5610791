"""The database writer against the real PostgreSQL of the session stack, migrated as `db migrate` does it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from pydantic import SecretStr

from sensorpipe.config import PostgresSettings, Settings
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.writer import DatabaseWriter, InvalidBatch, StorageError
from tests.support import minutes_unlike_readings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pg(stack_settings: Settings) -> PostgresSettings:
    migrate(stack_settings)
    return stack_settings.postgres


@pytest.fixture
def owner(pg: PostgresSettings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        yield conn


@pytest.fixture
def writer(pg: PostgresSettings) -> Iterator[DatabaseWriter]:
    with DatabaseWriter(pg) as w:
        yield w


def sensor() -> str:
    return f"test-{uuid.uuid4()}"


def readings(sensor_id: str, n: int, start: int = 0) -> list[tuple[Any, ...]]:
    out = []
    for i in range(start, start + n):
        raw = {"sensor_id": sensor_id, "temperature": 20 + i % 10, "humidity": 50.5, "seq": i, "meta": {"fw": "2.1"}}
        out.append((T0 + timedelta(milliseconds=i), sensor_id, 20.0 + i % 10, 50.5, json.dumps(raw), "payload", 1, i))
    return out


def count(owner: psycopg.Connection[Any], sensor_id: str, table: str = "sensor_data") -> int:
    row = owner.execute(f"select count(*) from {table} where sensor_id = %s", (sensor_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_same_batch_twice_is_stored_once_and_the_duplicates_are_counted(
    writer: DatabaseWriter, owner: psycopg.Connection[Any]
) -> None:
    sid = sensor()
    first = writer.write_readings(readings(sid, 500))
    again = writer.write_readings(readings(sid, 500))
    overlap = writer.write_readings(readings(sid, 500, start=250))  # half replayed, half new
    assert (first.written, first.skipped) == (500, 0)
    assert (again.written, again.skipped) == (0, 500)
    assert (overlap.written, overlap.skipped) == (250, 250)
    assert count(owner, sid) == 750


def test_duplicates_inside_one_batch_are_stored_once(writer: DatabaseWriter, owner: psycopg.Connection[Any]) -> None:
    sid = sensor()
    batch = readings(sid, 10)
    result = writer.write_readings(batch + batch[:3])
    assert (result.written, result.skipped) == (10, 3)
    assert count(owner, sid) == 10
    assert minutes_unlike_readings(owner, sid) == [], "a reading held twice counts once in its minute"


def test_first_copies_are_the_rows_stored_from_these_very_records_once_per_reading(writer: DatabaseWriter) -> None:
    sid = sensor()
    stored = readings(sid, 4)  # from Kafka offsets 0..3 of partition 1
    writer.write_readings(stored)
    forwarded_again = [(*row[:7], row[7] + 100) for row in stored[:2]]  # the same readings at later offsets
    new = readings(sid, 1, start=4)
    batch = [stored[2], *forwarded_again, new[0], new[0], stored[3]]  # a replayed row, a record holding one twice
    writer.write_readings(batch)
    assert writer.first_copies(batch) == [0, 3, 5]
    assert writer.first_copies(forwarded_again) == []


def test_raw_data_is_real_jsonb_with_queryable_nested_fields(
    writer: DatabaseWriter, owner: psycopg.Connection[Any]
) -> None:
    sid = sensor()
    writer.write_readings(readings(sid, 3))
    rows = owner.execute(
        "select jsonb_typeof(raw_data), raw_data->'meta'->>'fw', (raw_data->>'seq')::int from sensor_data"
        " where sensor_id = %s order by time",
        (sid,),
    ).fetchall()
    assert rows == [("object", "2.1", 0), ("object", "2.1", 1), ("object", "2.1", 2)]


def test_times_of_any_offset_and_from_arrow_are_stored_as_utc(
    writer: DatabaseWriter, owner: psycopg.Connection[Any]
) -> None:
    sid = sensor()
    local = datetime(2026, 11, 27, 16, 30, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    row = readings(sid, 1)[0]
    writer.write_readings([(local, *row[1:])])
    arrow_sid = sensor()
    table = pa.table(
        {
            "time": pa.array(
                [datetime(2026, 11, 27, 9, 0, tzinfo=timezone(timedelta(hours=-5)))], pa.timestamp("us", tz="-05:00")
            ),
            "sensor_id": [arrow_sid],
            "temperature": [21.0],
            "humidity": pa.array([None], pa.float64()),
            "raw_data": ['{"temperature": 21.0}'],
            "time_source": ["received"],
            "kafka_partition": pa.array([0], pa.int32()),
            "kafka_offset": pa.array([42], pa.int64()),
        }
    )
    assert writer.write_readings(table).written == 1
    stored = owner.execute(
        "select sensor_id, (time at time zone 'UTC')::text, time_source, kafka_offset from sensor_data"
        " where sensor_id in (%s, %s) order by time",
        (sid, arrow_sid),
    ).fetchall()
    assert stored == [(arrow_sid, "2026-11-27 14:00:00", "received", 42), (sid, "2026-11-27 14:30:00.25", "payload", 0)]


def test_naive_timestamps_are_refused_and_nothing_of_the_batch_is_stored(
    writer: DatabaseWriter, owner: psycopg.Connection[Any]
) -> None:
    sid = sensor()
    batch = readings(sid, 5)
    batch[3] = (datetime(2026, 11, 27, 14, 0, 3), *batch[3][1:])
    with pytest.raises(InvalidBatch, match="row 3: time is a naive datetime"):
        writer.write_readings(batch)
    assert count(owner, sid) == 0


@pytest.mark.parametrize("raw", ["{not json", '{"t": NaN}', '{"a": "\\u0000"}'])
def test_invalid_json_fails_the_whole_batch_naming_the_row(
    writer: DatabaseWriter, owner: psycopg.Connection[Any], raw: str
) -> None:
    sid = sensor()
    batch = readings(sid, 5)
    batch[2] = (*batch[2][:4], raw, *batch[2][5:])
    with pytest.raises(InvalidBatch, match="in row 2 of the batch, column raw_data") as caught:
        writer.write_readings(batch)
    assert "nothing of it was stored" in str(caught.value)
    assert count(owner, sid) == 0
    assert writer.write_readings(readings(sid, 5)).written == 5  # the writer goes on with the next batch


def test_out_of_range_values_fail_the_batch_with_the_constraint(writer: DatabaseWriter) -> None:
    batch = readings(sensor(), 2)
    batch[1] = (*batch[1][:2], 999.0, *batch[1][3:])
    with pytest.raises(InvalidBatch, match="sensor_data_temperature_range"):
        writer.write_readings(batch)


def test_sql_injection_is_stored_as_plain_data(writer: DatabaseWriter, owner: psycopg.Connection[Any]) -> None:
    sid = f"x'); drop table sensor_data; -- {uuid.uuid4()}"
    raw = json.dumps({"note": "'; drop table sensor_rejects; --", "sensor_id": '"); delete from sensor_data; --'})
    writer.write_readings([(T0, sid, 20.0, None, raw, "payload", 0, 1)])
    writer.write_rejects([("not_json", "'); drop table sensor_data_1m; --", b"'; --", sid, 0, 1, 0)])
    row = owner.execute("select sensor_id, raw_data->>'note' from sensor_data where sensor_id = %s", (sid,)).fetchone()
    assert row == (sid, "'; drop table sensor_rejects; --")
    tables = owner.execute(
        "select count(*) from pg_tables where tablename in ('sensor_data', 'sensor_rejects', 'sensor_data_1m')"
    ).fetchone()
    assert tables == (3,)


@pytest.mark.parametrize("replayed", [0, 5_000], ids=["fast-path", "duplicate-path"])
def test_a_backend_terminated_before_commit_is_retried_into_exactly_one_copy(
    pg: PostgresSettings, owner: psycopg.Connection[Any], replayed: int
) -> None:
    sid = sensor()
    batch = readings(sid, 20_000)
    terminated: list[int] = []
    # Only a member of the backend's role (or pg_signal_backend) may terminate it: another writer session.
    killer = psycopg.connect(pg.dsn(role="writer"), autocommit=True)

    def kill_first_attempt(conn: psycopg.Connection[Any]) -> None:
        if not terminated:
            pid = conn.info.backend_pid
            assert killer.execute("select pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)
            terminated.append(pid)

    with DatabaseWriter(pg) as warm:
        warm.write_readings(batch[:replayed])
    with DatabaseWriter(pg, before_commit=kill_first_attempt) as writer:
        result = writer.write_readings(batch)
    killer.close()
    assert terminated
    assert result.attempts == 2
    assert (result.written, result.skipped) == (20_000 - replayed, replayed)
    assert count(owner, sid) == 20_000
    duplicates = owner.execute(
        "select count(*) from (select time from sensor_data where sensor_id = %s group by time having count(*) > 1) d",
        (sid,),
    ).fetchone()
    assert duplicates == (0,)


def test_rejects_are_recorded_once_per_kafka_record_and_element(
    writer: DatabaseWriter, owner: psycopg.Connection[Any]
) -> None:
    topic = f"dlq-{uuid.uuid4()}"
    rejects = [
        ("not_json", "Expecting value", b"\xff\x00garbage", topic, 2, 10, 0),
        ("out_of_range", "temperature 900", b'[{"temperature": 900}]', topic, 2, 11, 0),
        ("out_of_range", "humidity -3", b'[{"humidity": -3}]', topic, 2, 11, 1),
        ("wrong_type", 'sensor_id "a\x00b"', b'{"sensor_id": 1, "note": "a\\u0000b"}', topic, 2, 12, 0),
    ]
    assert (writer.write_rejects(rejects).written, writer.write_rejects(rejects).skipped) == (4, 4)
    stored = owner.execute(
        "select reason, detail, payload, kafka_offset, element from sensor_rejects where kafka_topic = %s order by id",
        (topic,),
    ).fetchall()
    assert stored == [
        ("not_json", "Expecting value", b"\xff\x00garbage", 10, 0),
        ("out_of_range", "temperature 900", b'[{"temperature": 900}]', 11, 0),
        ("out_of_range", "humidity -3", b'[{"humidity": -3}]', 11, 1),
        ("wrong_type", 'sensor_id "a\ufffdb"', b'{"sensor_id": 1, "note": "a\\u0000b"}', 12, 0),  # text holds no NUL
    ]


MERGED = """\
select bucket, readings, count_temperature, avg_temperature, min_temperature, max_temperature, count_humidity,
       avg_humidity, min_humidity, max_humidity
from sensor_data_1m where sensor_id = %s order by bucket"""


def assert_minutes_match_readings(owner: psycopg.Connection[Any], sensor_id: str) -> list[tuple[Any, ...]]:
    """sensor_data_1m of the sensor equals its minutes computed from sensor_data; returns its rows."""
    assert minutes_unlike_readings(owner, sensor_id) == []
    return owner.execute(MERGED, (sensor_id,)).fetchall()


def test_the_minutes_of_stored_readings_merge_exactly_through_replays_late_readings_and_missing_values(
    writer: DatabaseWriter, owner: psycopg.Connection[Any]
) -> None:
    sid = sensor()
    rows = readings(sid, 6)
    spread = [(T0 + timedelta(seconds=25 * i), *row[1:]) for i, row in enumerate(rows)]  # 3 minutes
    spread[1] = (*spread[1][:3], None, *spread[1][4:])  # no humidity
    first = writer.write_readings(spread[:4])
    assert (first.written, first.minutes) == (4, 2)
    late = (T0 + timedelta(seconds=5), sid, -3.5, 99.0, "{}", "payload", 1, 100)  # an old minute, any age
    replay = writer.write_readings([*spread, late])  # 4 stored before: skipped and not merged again
    assert (replay.written, replay.skipped) == (3, 4)
    assert writer.write_readings([late]).skipped == 1
    merged = assert_minutes_match_readings(owner, sid)
    assert [(row[0], row[1], row[2], row[6]) for row in merged] == [
        (T0, 4, 4, 3),
        (T0 + timedelta(minutes=1), 2, 2, 2),
        (T0 + timedelta(minutes=2), 1, 1, 1),
    ]
    assert merged[0][4:6] == (-3.5, 22.0) and merged[0][9] == 99.0


def test_minutes_from_arrow_in_any_time_zone_merge_into_the_utc_minute(
    writer: DatabaseWriter, owner: psycopg.Connection[Any]
) -> None:
    sid = sensor()
    local = [T0 + timedelta(seconds=59), T0 + timedelta(seconds=61)]
    batch = pa.table(
        {
            "time": pa.array(
                [t.astimezone(timezone(timedelta(hours=5, minutes=30))) for t in local], pa.timestamp("ms", tz="+05:30")
            ),
            "sensor_id": [sid, sid],
            "temperature": [1.0, 2.0],
            "humidity": [None, 40.0],
            "raw_data": ["{}", "{}"],
            "time_source": ["payload", "payload"],
            "kafka_partition": [0, 0],
            "kafka_offset": [1, 2],
        }
    )
    assert writer.write_readings(batch).minutes == 2
    merged = assert_minutes_match_readings(owner, sid)
    assert [(row[0], row[1], row[6]) for row in merged] == [(T0, 1, 0), (T0 + timedelta(minutes=1), 1, 1)]


def test_writers_merging_the_same_minutes_at_once_count_every_reading_once(
    pg: PostgresSettings, owner: psycopg.Connection[Any]
) -> None:
    sid = sensor()

    def write(part: int) -> None:
        with DatabaseWriter(pg) as own:
            for n in range(20):
                own.write_readings(readings(sid, 50, start=1000 * part + 50 * n))

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(write, range(3)))
    merged = assert_minutes_match_readings(owner, sid)
    assert sum(row[1] for row in merged) == 3 * 20 * 50


def test_writes_as_the_writer_role_which_may_not_delete(pg: PostgresSettings) -> None:
    users: list[str] = []

    def who(conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("select current_user").fetchone()
        users.append(str(row[0]) if row else "")

    with DatabaseWriter(pg, before_commit=who) as writer:
        writer.write_readings(readings(sensor(), 1))
    assert users == [pg.writer_user]
    with psycopg.connect(pg.dsn(role="writer")) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("delete from sensor_data")


def test_missing_table_says_run_db_migrate(pg: PostgresSettings) -> None:
    unmigrated = pg.model_copy(update={"database": "postgres"})
    with DatabaseWriter(unmigrated) as writer, pytest.raises(StorageError) as caught:
        writer.write_readings(readings(sensor(), 1))
    assert str(caught.value) == (
        f'relation "sensor_data" does not exist in postgres at 127.0.0.1:{pg.port}: run `sensorpipe db migrate`'
    )


def test_bad_password_names_the_settings_to_check(pg: PostgresSettings) -> None:
    wrong = pg.model_copy(update={"writer_password": SecretStr("not-the-password")})
    with DatabaseWriter(wrong) as writer, pytest.raises(StorageError) as caught:
        writer.write_readings(readings(sensor(), 1))
    assert f"refused {pg.writer_user}: check postgres.writer_user/writer_password" in str(caught.value)
