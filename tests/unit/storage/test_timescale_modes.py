"""What `db migrate` makes of a server whose TimescaleDB cannot be used, for the states no local server shows.

The integration tests cover a real server that preloads TimescaleDB and one that does not; a server
without TimescaleDB at all, or whose TimescaleDB library does not load (built for another PostgreSQL
version), cannot be made from the installed packages, so a fake connection answers the catalogue here.
"""

from __future__ import annotations

from typing import Any, cast

import psycopg
import pytest
from psycopg import errors

from sensorpipe.config import PostgresSettings, Settings, TimescaleSettings
from sensorpipe.storage.errors import StorageError, connection_error
from sensorpipe.storage.timescale import CREATE_EXTENSION, PRELOADED, apply_timescale

NOT_LOADED = 'could not load library "/usr/lib/postgresql/15/lib/timescaledb-2.22.1.so": undefined symbol: x'


class _Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


class FakeServer:
    """The catalogue queries apply_timescale asks before it changes anything; any other query is a test error."""

    def __init__(self, available: str | None, *, preloaded: bool = True, create: Exception | None = None) -> None:
        self.available = available
        self.preloaded = preloaded
        self.create = create

    def execute(self, query: str) -> _Rows:
        if "pg_available_extensions" in query:
            return _Rows([(self.available, None)] if self.available else [])
        if query == PRELOADED:
            return _Rows([(1,)] if self.preloaded else [])
        if query == CREATE_EXTENSION and self.create is not None:
            raise self.create
        raise AssertionError(f"unexpected query: {query}")


def migrate_on(server: FakeServer, mode: str) -> Any:
    settings = Settings(timescale=TimescaleSettings.model_validate({"mode": mode}))
    return apply_timescale(cast(psycopg.Connection, server), settings)


def test_no_timescaledb_is_plain_tables_in_auto_and_an_error_in_on() -> None:
    outcome = migrate_on(FakeServer(None), "auto")
    assert not outcome.enabled
    assert outcome.detail == "TimescaleDB not available on this server: plain PostgreSQL tables"
    with pytest.raises(StorageError, match=r"timescale\.mode is on but this PostgreSQL has no TimescaleDB"):
        migrate_on(FakeServer(None), "on")


def test_a_library_that_does_not_load_is_plain_tables_and_one_line_in_auto_and_that_line_in_on() -> None:
    server = FakeServer("2.22.1", create=errors.UndefinedFile(NOT_LOADED))
    outcome = migrate_on(server, "auto")
    assert not outcome.enabled
    assert outcome.detail.startswith(f"TimescaleDB 2.22.1 is installed on this server but does not load ({NOT_LOADED})")
    assert "plain tables; to use it, install the TimescaleDB build for this PostgreSQL version" in outcome.detail
    with pytest.raises(StorageError, match=r"does not load .*\(timescale\.mode = on\): install the TimescaleDB build"):
        migrate_on(server, "on")


def test_mode_off_asks_the_server_nothing() -> None:
    outcome = migrate_on(FakeServer("2.22.1", preloaded=False), "off")
    assert (outcome.enabled, outcome.detail) == (
        False,
        "TimescaleDB off by configuration (timescale.mode = off): plain tables",
    )


def test_a_server_error_of_class_58_is_not_called_unreachable() -> None:
    message = connection_error(PostgresSettings(port=5999), "owner", errors.UndefinedFile(NOT_LOADED))
    assert message.startswith(f"PostgreSQL at 127.0.0.1:5999 failed as sensor_user ({NOT_LOADED})")
    assert "unreachable" not in message
    refused = connection_error(PostgresSettings(port=5999), "owner", psycopg.OperationalError("connection refused"))
    assert "is unreachable as sensor_user" in refused
