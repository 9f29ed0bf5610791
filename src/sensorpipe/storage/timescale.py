"""TimescaleDB where the server has it: hypertables, compression and retention from `[timescale]`.

The schema itself is plain PostgreSQL (storage/migrations); this step turns `sensor_data` and
`sensor_data_1m` into hypertables and keeps the policies equal to the settings on every `db migrate`.
Without the extension nothing changes and the outcome says so. The local stack preloads TimescaleDB
whenever it is installed beside the server (see stack/postgres.py and docs/storage.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg

from sensorpipe.config import Settings, TimescaleSettings
from sensorpipe.storage.errors import PRELOAD_FIX, StorageError, preload_error

logger = logging.getLogger(__name__)

CREATE_EXTENSION = "create extension if not exists timescaledb"
PRELOADED = "select 1 from pg_settings where name = 'timescaledb.disable_load'"
"""A setting of TimescaleDB's loader, there when the server preloaded it. Without the preload, `create
extension` (or any use of a database that has it) ends the session with a FATAL."""
AGGREGATE_CHUNK_INTERVAL = "7 days"


@dataclass(frozen=True)
class TimescaleOutcome:
    enabled: bool
    detail: str
    version: str | None = None
    statements: list[str] = field(default_factory=list)


def _interval(value: str) -> str:
    return "interval '" + value.replace("'", "''") + "'"


def timescale_statements(settings: TimescaleSettings, *, compression_enabled: bool) -> list[str]:
    """The statements after `create extension`, given whether sensor_data already has compression on.

    Each is idempotent, and policies are removed and added again so that a changed setting takes effect.
    """
    chunk = _interval(settings.chunk_interval)
    statements = [
        f"select create_hypertable('sensor_data', 'time', chunk_time_interval => {chunk},"
        " if_not_exists => true, migrate_data => true)",
        f"select set_chunk_time_interval('sensor_data', {chunk})",
        "select create_hypertable('sensor_data_1m', 'bucket', chunk_time_interval =>"
        f" {_interval(AGGREGATE_CHUNK_INTERVAL)}, if_not_exists => true, migrate_data => true)",
        "select remove_compression_policy('sensor_data', if_exists => true)",
    ]
    if settings.compress_after:
        if not compression_enabled:
            statements.append(
                "alter table sensor_data set (timescaledb.compress, timescaledb.compress_segmentby = 'sensor_id',"
                " timescaledb.compress_orderby = 'time desc')"
            )
        statements.append(f"select add_compression_policy('sensor_data', {_interval(settings.compress_after)})")
    statements.append("select remove_retention_policy('sensor_data', if_exists => true)")
    if settings.retention:
        statements.append(f"select add_retention_policy('sensor_data', {_interval(settings.retention)})")
    return statements


def apply_timescale(conn: psycopg.Connection, settings: Settings) -> TimescaleOutcome:
    """Use TimescaleDB if `mode` allows and the server offers it; otherwise say that its features are off.

    Installed on the server but not usable (not preloaded, or a library that does not load): in `auto`
    mode plain tables and one line with the cause and the fix; in `on` mode that line is the error.
    """
    mode = settings.timescale.mode
    if mode == "off":
        logger.info("TimescaleDB features are off (timescale.mode = off): sensor_data is a plain table")
        return TimescaleOutcome(False, "TimescaleDB off by configuration (timescale.mode = off): plain tables")
    row = conn.execute(
        "select default_version, installed_version from pg_available_extensions where name = 'timescaledb'"
    ).fetchone()
    if row is None:
        if mode == "on":
            raise StorageError(
                "timescale.mode is on but this PostgreSQL has no TimescaleDB extension: use a TimescaleDB server"
                " (e.g. the timescale/timescaledb image) or set timescale.mode = auto"
            )
        logger.info(
            "TimescaleDB is not available on this server: TimescaleDB features are off"
            " (sensor_data is a plain table: no chunks, compression or retention policies)"
        )
        return TimescaleOutcome(False, "TimescaleDB not available on this server: plain PostgreSQL tables")
    available, installed = row
    if conn.execute(PRELOADED).fetchone() is None:
        if installed is not None:
            raise preload_error(settings.postgres)
        return _unusable(mode, f"TimescaleDB {available} is installed on this server but not preloaded", PRELOAD_FIX)
    try:
        conn.execute(CREATE_EXTENSION)
    except psycopg.errors.InsufficientPrivilege as e:
        raise StorageError(
            "creating the timescaledb extension needs a superuser: run `create extension timescaledb` in the"
            " database once as one, or set timescale.mode = off"
        ) from e
    except psycopg.OperationalError as e:
        if not (e.sqlstate or "").startswith("58"):
            raise
        # Class 58: the server cannot load the extension's library (e.g. built for another PostgreSQL version).
        return _unusable(
            mode,
            f"TimescaleDB {available} is installed on this server but does not load ({e.diag.message_primary or e})",
            "install the TimescaleDB build for this PostgreSQL version",
        )
    version_row = conn.execute("select extversion from pg_extension where extname = 'timescaledb'").fetchone()
    state = conn.execute(
        "select compression_enabled from timescaledb_information.hypertables where hypertable_name = 'sensor_data'"
    ).fetchone()
    statements = timescale_statements(settings.timescale, compression_enabled=bool(state and state[0]))
    for statement in statements:
        conn.execute(statement.encode())
    version = version_row[0] if version_row else None
    detail = f"TimescaleDB {version}: sensor_data and sensor_data_1m are hypertables"
    logger.info("%s", detail)
    return TimescaleOutcome(True, detail, version, [CREATE_EXTENSION, *statements])


def _unusable(mode: str, cause: str, fix: str) -> TimescaleOutcome:
    """TimescaleDB present but unusable: an error when required, plain tables and the same line otherwise."""
    if mode == "on":
        raise StorageError(f"{cause} (timescale.mode = on): {fix}, or set timescale.mode = auto for plain tables")
    detail = f"{cause}: plain tables; to use it, {fix}"
    logger.info("%s", detail)
    return TimescaleOutcome(False, detail)
