"""`db stats`: what sensordb holds, read with the read-only role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from sensorpipe.config import Settings
from sensorpipe.storage.errors import StorageError, connected

TABLES = ("sensor_data", "sensor_data_1m", "sensor_metadata", "sensor_rejects")


@dataclass(frozen=True)
class TableSize:
    table: str
    rows: int
    table_bytes: int
    index_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class DbStats:
    readings: int
    first_reading: datetime | None
    last_reading: datetime | None
    sensors: int
    rejects: int
    aggregates: int
    timescale: bool
    tables: list[TableSize] = field(default_factory=list)


def db_stats(settings: Settings) -> DbStats:
    pg = settings.postgres
    try:
        with connected(pg, "reader") as conn:
            hypertables = _hypertables(conn)
            row = conn.execute("select min(time), max(time), count(distinct sensor_id) from sensor_data").fetchone()
            assert row is not None
            counts = {table: _count(conn, table) for table in TABLES}
            sizes = [_size(conn, table, counts[table], table in hypertables) for table in TABLES]
    except psycopg.errors.UndefinedTable as e:
        raise StorageError(
            f"{e.diag.message_primary} in {pg.database} at {pg.host}:{pg.port}: run `sensorpipe db migrate`"
        ) from e
    return DbStats(
        readings=counts["sensor_data"],
        first_reading=row[0],
        last_reading=row[1],
        sensors=row[2],
        rejects=counts["sensor_rejects"],
        aggregates=counts["sensor_data_1m"],
        timescale="sensor_data" in hypertables,
        tables=sizes,
    )


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"select count(*) from {table}").fetchone()  # table names are our constants
    return int(row[0]) if row else 0


def _hypertables(conn: psycopg.Connection) -> set[str]:
    """Names of the hypertables; none without the TimescaleDB extension."""
    if conn.execute("select 1 from pg_extension where extname = 'timescaledb'").fetchone() is None:
        return set()
    return {str(r[0]) for r in conn.execute("select hypertable_name from timescaledb_information.hypertables")}


def _size(conn: psycopg.Connection, table: str, rows: int, hypertable: bool) -> TableSize:
    """Sizes of a table with its indexes; a hypertable's live in its chunks, so TimescaleDB adds them up."""
    if hypertable:
        query = (
            "select table_bytes + coalesce(toast_bytes, 0), index_bytes, total_bytes"
            " from hypertable_detailed_size(%(t)s::regclass)"
        )
    else:
        query = (
            "select pg_table_size(%(t)s::regclass), pg_indexes_size(%(t)s::regclass),"
            " pg_total_relation_size(%(t)s::regclass)"
        )
    row = conn.execute(query, {"t": table}).fetchone()
    table_bytes, index_bytes, total_bytes = (int(v or 0) for v in row) if row else (0, 0, 0)
    return TableSize(table, rows, table_bytes, index_bytes, total_bytes)
