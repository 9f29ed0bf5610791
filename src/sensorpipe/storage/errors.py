"""Errors of the database side, worded as cause and fix for the user (never a raw driver message alone)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import psycopg

from sensorpipe.config import PostgresSettings
from sensorpipe.errors import SensorpipeError

Role = Literal["owner", "writer", "reader"]


class StorageError(SensorpipeError):
    """The database refused or cannot be reached; the message names the cause and the fix."""


PRELOAD_FIX = (
    "add timescaledb to the server's shared_preload_libraries and restart it (the local stack:"
    " `sensorpipe stack down`, then `sensorpipe stack up` preloads it)"
)
"""How to make an installed TimescaleDB usable: the server must load its library at start."""


def not_preloaded(error: psycopg.Error) -> bool:
    """TimescaleDB's refusal to run in a server that did not preload it (a FATAL: the session is gone)."""
    return error.sqlstate == "XX000" and "must be preloaded" in (error.diag.message_primary or str(error))


def preload_error(pg: PostgresSettings) -> StorageError:
    """A database that already uses TimescaleDB on a server without the preload: nothing works until it has it."""
    return StorageError(
        f"{pg.database} at {pg.host}:{pg.port} uses TimescaleDB, which this server does not preload: {PRELOAD_FIX}"
    )


def connection_error(pg: PostgresSettings, role: Role, error: psycopg.OperationalError) -> str:
    """What a failed connection means: server down, wrong password, a database that does not exist, or a
    server that answered with a system error."""
    where = f"PostgreSQL at {pg.host}:{pg.port}"
    user = {"owner": pg.user, "writer": pg.writer_user, "reader": pg.reader_user}[role]
    text = str(error).strip()
    if "password authentication failed" in text or ("role" in text and "does not exist" in text):
        setting = {"owner": "postgres.user/password", "writer": "postgres.writer_user/writer_password"}.get(
            role, "postgres.reader_user/reader_password"
        )
        hint = " (the writer and reader roles are created by `sensorpipe db migrate`)" if role != "owner" else ""
        return f"{where} refused {user}: check {setting}{hint}"
    if "database" in text and "does not exist" in text:
        return f"{where} has no database {pg.database}: `sensorpipe stack up` creates it, or set postgres.database"
    detail = text.splitlines()[0] if text else "no detail"
    if error.sqlstate is not None and error.sqlstate.startswith("58"):
        # Class 58, a system error of the server (e.g. a library it cannot load): it answered, it is not down.
        return f"{where} failed as {user} ({detail}): read the server's log (`sensorpipe stack status` names it)"
    return f"{where} is unreachable as {user} ({detail}): is `sensorpipe stack up` running?"


@contextmanager
def connected(pg: PostgresSettings, role: Role) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection as `role`; a connection that fails, or breaks while in use, is a StorageError.

    So is a database with TimescaleDB tables on a server that does not preload TimescaleDB: any use of
    them ends the session.
    """
    try:
        with psycopg.connect(pg.dsn(role=role), connect_timeout=5, autocommit=True) as conn:
            yield conn
    except psycopg.OperationalError as e:
        raise StorageError(connection_error(pg, role, e)) from e
    except psycopg.errors.InternalError_ as e:
        if not_preloaded(e):
            raise preload_error(pg) from e
        raise
