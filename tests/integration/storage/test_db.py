"""`db migrate` and `db stats` against the real PostgreSQL of the session stack, each test in a database of its own.

TimescaleDB's part (the session stack preloads it) and the plain-PostgreSQL fallbacks: test_timescale.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from sensorpipe.config import Settings
from sensorpipe.storage.migrate import load_migrations, migrate
from tests.support import sensorpipe

pytestmark = pytest.mark.integration


def in_db(settings: Settings, database: str) -> Settings:
    return settings.model_copy(update={"postgres": settings.postgres.model_copy(update={"database": database})})


def connect(settings: Settings, role: str = "owner") -> psycopg.Connection:
    return psycopg.connect(settings.postgres.dsn(role=role), autocommit=True)  # type: ignore[arg-type]


def test_migrate_from_empty_then_again_changes_nothing(stack_config: Path, empty_db: str) -> None:
    first = sensorpipe("--set", f"postgres.database={empty_db}", "db", "migrate", "--json", config=stack_config)
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert report["applied"] == [f"{m.version:04d}_{m.name}" for m in load_migrations()]

    second = sensorpipe("--set", f"postgres.database={empty_db}", "db", "migrate", "--json", config=stack_config)
    assert second.returncode == 0, second.stdout + second.stderr
    again = json.loads(second.stdout)
    assert (again["applied"], again["already"]) == ([], report["applied"])


def test_the_schema_is_what_design_md_describes(stack_settings: Settings, empty_db: str) -> None:
    settings = in_db(stack_settings, empty_db)
    migrate(settings)
    with connect(settings) as conn:
        columns: dict[str, str] = dict(
            conn.execute(
                "select column_name, data_type from information_schema.columns where table_name = 'sensor_data'"
            ).fetchall()
        )
        key = conn.execute(
            "select pg_get_constraintdef(oid) from pg_constraint where conname = 'sensor_data_pkey'"
        ).fetchone()
        tables = {r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
    assert columns["time"] == "timestamp with time zone"
    assert columns["raw_data"] == "jsonb"
    assert {"sensor_id", "temperature", "humidity", "kafka_partition", "kafka_offset", "ingested_at"} <= set(columns)
    assert key == ('PRIMARY KEY (sensor_id, "time")',)
    assert {"sensor_data", "sensor_metadata", "sensor_data_1m", "sensor_rejects", "schema_migrations"} <= tables


def test_roles_have_least_privilege(stack_settings: Settings, empty_db: str) -> None:
    settings = in_db(stack_settings, empty_db)
    migrate(settings)
    row = (datetime(2026, 11, 27, 12, tzinfo=UTC), "s-1", 21.5, 40.0, '{"temperature": 21.5}')
    insert = "insert into sensor_data (time, sensor_id, temperature, humidity, raw_data) values (%s, %s, %s, %s, %s)"
    with connect(settings, "writer") as conn:
        conn.execute(insert, row)
        assert conn.execute("select count(*) from sensor_data").fetchone() == (1,)
        for statement in (
            "drop table sensor_data",
            "alter table sensor_data add column x int",
            "delete from sensor_data",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with connect(settings, "reader") as conn:
        assert conn.execute("select sensor_id from sensor_data").fetchall() == [("s-1",)]
        for statement in (insert, "update sensor_data_1m set readings = 0", "drop table sensor_rejects"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, row if statement == insert else None)


def test_an_edited_migration_is_refused_not_rerun(stack_config: Path, stack_settings: Settings, empty_db: str) -> None:
    settings = in_db(stack_settings, empty_db)
    migrate(settings)
    with connect(settings) as conn:
        conn.execute("update schema_migrations set checksum = 'edited' where version = 1")
    result = sensorpipe("--set", f"postgres.database={empty_db}", "db", "migrate", config=stack_config)
    assert result.returncode == 1
    assert "migration 0001_sensor_tables changed after it was applied" in result.stderr
    assert "Traceback" not in result.stderr


def test_stats_count_what_the_tables_hold(stack_config: Path, stack_settings: Settings, empty_db: str) -> None:
    settings = in_db(stack_settings, empty_db)
    unmigrated = sensorpipe("--set", f"postgres.database={empty_db}", "db", "stats", config=stack_config)
    assert unmigrated.returncode == 1
    assert "run `sensorpipe db migrate`" in unmigrated.stderr

    migrate(settings)
    with connect(settings, "writer") as conn:
        for minute, sensor in enumerate(["a", "b", "a"]):
            conn.execute(
                "insert into sensor_data (time, sensor_id, humidity, raw_data) values (%s, %s, 50, '{}')",
                (datetime(2026, 11, 27, 12, minute, tzinfo=UTC), sensor),
            )
        conn.execute("insert into sensor_rejects (reason, payload) values ('not_json', 'x')")
    result = sensorpipe("--set", f"postgres.database={empty_db}", "db", "stats", "--json", config=stack_config)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["readings"], stats["sensors"], stats["rejects"], stats["aggregates"]) == (3, 2, 1, 0)
    assert stats["first_reading"].startswith("2026-11-27 12:00:00")
    assert stats["last_reading"].startswith("2026-11-27 12:02:00")
    sizes = {t["table"]: t for t in stats["tables"]}
    assert sizes["sensor_data"]["rows"] == 3
    assert sizes["sensor_data"]["index_bytes"] > 0
    human = sensorpipe("--set", f"postgres.database={empty_db}", "db", "stats", config=stack_config)
    assert "3 readings from 2 sensor(s)" in human.stdout
