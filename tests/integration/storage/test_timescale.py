"""TimescaleDB for real: the session stack preloads it, so `db migrate` makes hypertables with compression
and policies, and replays into compressed chunks store nothing twice. Then the fallbacks: `timescale.mode
= off`, and a server with TimescaleDB installed but not preloaded (plain tables in `auto`, one clear line).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sensorpipe.config import Settings
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.writer import DatabaseWriter
from tests.support import PrivatePostgres, new_database, sensorpipe

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(hour=22, minute=0, second=0, microsecond=0) - timedelta(days=2)
"""Newer than the compression policy's 7 days: the tests compress chunks themselves, the policy leaves them be."""
SENSORS = ("s-1", "s-2", "s-3")


def in_db(settings: Settings, database: str, **timescale: str) -> Settings:
    return settings.model_copy(
        update={
            "postgres": settings.postgres.model_copy(update={"database": database}),
            "timescale": settings.timescale.model_copy(update=timescale),
        }
    )


def owner(settings: Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(settings.postgres.dsn(), autocommit=True)


def readings(hours: int = 4) -> list[tuple[Any, ...]]:
    """Every sensor once a minute for `hours` from T0, across midnight: two one-day chunks."""
    rows = []
    for minute in range(hours * 60):
        for n, sensor in enumerate(SENSORS):
            raw = json.dumps({"sensor_id": sensor, "temperature": 20.5, "humidity": 40})
            rows.append((T0 + timedelta(minutes=minute), sensor, 20.5, 40.0, raw, "payload", n, minute))
    return rows


def columns(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, str]]:
    query = (
        "select column_name, data_type, is_nullable from information_schema.columns"
        " where table_schema = 'public' and table_name = %s order by ordinal_position"
    )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(query, (table,))]


def hypertables(conn: psycopg.Connection[Any]) -> set[str]:
    if conn.execute("select 1 from pg_extension where extname = 'timescaledb'").fetchone() is None:
        return set()
    return {str(r[0]) for r in conn.execute("select hypertable_name from timescaledb_information.hypertables")}


def duplicates(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "select count(*) from (select 1 from sensor_data group by sensor_id, time having count(*) > 1) d"
    ).fetchone()
    assert row is not None
    return int(row[0])


def policies(conn: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for proc, config in conn.execute(
        "select proc_name, config from timescaledb_information.jobs where hypertable_name = 'sensor_data'"
    ):
        found.setdefault(str(proc), []).append(config)
    return found


# --- TimescaleDB on the session stack --------------------------------------------------------------------


def test_migrate_makes_hypertables_with_compression_by_sensor_and_its_policies(
    timescaledb: str, stack_config: Path, stack_settings: Settings, empty_db: str
) -> None:
    first = sensorpipe("--set", f"postgres.database={empty_db}", "db", "migrate", "--json", config=stack_config)
    assert first.returncode == 0, first.stdout + first.stderr
    outcome = json.loads(first.stdout)["timescale"]
    assert (outcome["enabled"], outcome["version"]) == (True, timescaledb)

    settings = in_db(stack_settings, empty_db)
    with owner(settings) as conn:
        assert hypertables(conn) == {"sensor_data", "sensor_data_1m"}
        compression = conn.execute(
            "select segmentby, orderby from timescaledb_information.hypertable_compression_settings"
            " where hypertable = 'sensor_data'::regclass"
        ).fetchone()
        interval = conn.execute(
            "select time_interval from timescaledb_information.dimensions where hypertable_name = 'sensor_data'"
        ).fetchone()
        assert compression == ("sensor_id", '"time" DESC')
        assert interval == (timedelta(days=1),)
        found = policies(conn)
    assert set(found) == {"policy_compression"}
    assert [c["compress_after"] for c in found["policy_compression"]] == ["7 days"]

    changed = ("timescale.chunk_interval=12 hours", "timescale.compress_after=2 days", "timescale.retention=90 days")
    flags = [arg for setting in changed for arg in ("--set", setting)]
    again = sensorpipe(*flags, "--set", f"postgres.database={empty_db}", "db", "migrate", "--json", config=stack_config)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["applied"] == []
    with owner(settings) as conn:
        found = policies(conn)
        interval = conn.execute(
            "select time_interval from timescaledb_information.dimensions where hypertable_name = 'sensor_data'"
        ).fetchone()
    assert [c["compress_after"] for c in found["policy_compression"]] == ["2 days"]
    assert [c["drop_after"] for c in found["policy_retention"]] == ["90 days"]
    assert interval == (timedelta(hours=12),)


def test_a_replay_into_compressed_chunks_stores_nothing_twice(
    timescaledb: str, stack_settings: Settings, empty_db: str
) -> None:
    settings = in_db(stack_settings, empty_db)
    migrate(settings)
    batch = readings()
    with DatabaseWriter(settings.postgres) as writer:
        assert writer.write_readings(batch).written == len(batch)
        with owner(settings) as conn:
            conn.execute("select compress_chunk(c) from show_chunks('sensor_data') c")
            chunks = conn.execute(
                "select is_compressed from timescaledb_information.chunks where hypertable_name = 'sensor_data'"
            ).fetchall()
        assert chunks == [(True,), (True,)]

        replay = writer.write_readings(batch)
        assert (replay.written, replay.skipped) == (0, len(batch))
        # What the stream job asks after a replay, so that the lake takes these rows once too.
        assert writer.first_copies(batch) == list(range(len(batch)))
        late = [(T0 + timedelta(seconds=30), "s-1", 21.0, 41.0, '{"late": true}', "payload", 0, 10_000)]
        assert writer.write_readings(late).written == 1

    with owner(settings) as conn:
        assert conn.execute("select count(*) from sensor_data").fetchone() == (len(batch) + 1,)
        assert duplicates(conn) == 0
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "insert into sensor_data (time, sensor_id, temperature, raw_data) values (%s, 's-2', 1, '{}')", (T0,)
            )


def test_db_stats_counts_compressed_chunks(
    timescaledb: str, stack_config: Path, stack_settings: Settings, empty_db: str
) -> None:
    settings = in_db(stack_settings, empty_db)
    migrate(settings)
    batch = readings(hours=1)
    with DatabaseWriter(settings.postgres) as writer:
        writer.write_readings(batch)
    with owner(settings) as conn:
        conn.execute("select compress_chunk(c) from show_chunks('sensor_data') c")
    result = sensorpipe("--set", f"postgres.database={empty_db}", "db", "stats", "--json", config=stack_config)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["readings"], stats["sensors"], stats["timescale"]) == (len(batch), len(SENSORS), True)
    sizes = {t["table"]: t for t in stats["tables"]}
    assert sizes["sensor_data"]["rows"] == len(batch)
    assert sizes["sensor_data"]["total_bytes"] > 0


# --- plain PostgreSQL ------------------------------------------------------------------------------------


def test_mode_off_keeps_plain_tables_with_the_same_columns_and_idempotent_replays(
    timescaledb: str, stack_settings: Settings, empty_db: str
) -> None:
    hyper = in_db(stack_settings, empty_db)
    report = migrate(hyper)
    assert report.timescale is not None and report.timescale.enabled
    with new_database(stack_settings) as plain_db:
        plain = in_db(stack_settings, plain_db, mode="off")
        off = migrate(plain).timescale
        assert off is not None and not off.enabled
        assert "timescale.mode = off" in off.detail
        batch = readings(hours=1)
        with DatabaseWriter(plain.postgres) as writer:
            assert writer.write_readings(batch).written == len(batch)
            assert writer.write_readings(batch).skipped == len(batch)
        with owner(plain) as conn, owner(hyper) as hyper_conn:
            assert hypertables(conn) == set()
            for table in ("sensor_data", "sensor_data_1m"):
                assert columns(conn, table) == columns(hyper_conn, table)
            assert conn.execute("select count(*) from sensor_data").fetchone() == (len(batch),)


# --- TimescaleDB installed but not preloaded -------------------------------------------------------------


@pytest.fixture
def unloaded_db(unloaded_postgres: PrivatePostgres) -> Iterator[Settings]:
    """A new database on the server without the preload: its settings, and `--config` for the CLI."""
    with new_database(unloaded_postgres.settings) as database:
        yield in_db(unloaded_postgres.settings, database)


def on(settings: Settings, *args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return sensorpipe("--set", f"postgres.database={settings.postgres.database}", *args, config=config)


def test_auto_mode_without_the_preload_makes_plain_tables_and_says_why_in_one_line(
    timescaledb: str, unloaded_postgres: PrivatePostgres, unloaded_db: Settings
) -> None:
    result = on(unloaded_db, "db", "migrate", config=unloaded_postgres.config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    line = next(line for line in result.stdout.splitlines() if "TimescaleDB" in line)
    assert f"TimescaleDB {timescaledb} is installed on this server but not preloaded: plain tables" in line
    assert "shared_preload_libraries" in line and "`sensorpipe stack up`" in line
    assert sum("TimescaleDB" in line for line in result.stdout.splitlines()) == 1

    batch = readings(hours=1)
    with DatabaseWriter(unloaded_db.postgres) as writer:
        assert writer.write_readings(batch).written == len(batch)
        assert writer.write_readings(batch).skipped == len(batch)
    with owner(unloaded_db) as conn:
        assert hypertables(conn) == set()
        assert duplicates(conn) == 0


def test_on_mode_without_the_preload_is_one_line_and_exit_1(
    timescaledb: str, unloaded_postgres: PrivatePostgres, unloaded_db: Settings
) -> None:
    result = on(unloaded_db, "--set", "timescale.mode=on", "db", "migrate", config=unloaded_postgres.config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"TimescaleDB {timescaledb} is installed on this server but not preloaded (timescale.mode = on)" in lines[0]
    assert "shared_preload_libraries" in lines[0]


def test_a_database_using_timescaledb_on_a_server_that_lost_the_preload_is_one_clear_error(
    timescaledb: str, unloaded_postgres: PrivatePostgres
) -> None:
    server = unloaded_postgres
    server.stop()
    server.start(preload=True)
    try:
        with new_database(server.settings) as database:
            settings = in_db(server.settings, database)
            report = migrate(settings)
            assert report.timescale is not None and report.timescale.enabled
            server.stop()
            server.start(preload=False)
            expected = f"{database} at 127.0.0.1:{server.settings.postgres.port} uses TimescaleDB, which this server"
            for command in (("db", "migrate"), ("db", "stats")):
                result = on(settings, *command, config=server.config)
                assert result.returncode == 1, result.stdout
                assert expected in result.stderr and "shared_preload_libraries" in result.stderr
                assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    finally:
        server.stop()
        server.start(preload=False)
