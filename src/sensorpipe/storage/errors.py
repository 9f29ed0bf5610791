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


def connection_error(pg: PostgresSettings, role: Role, error: psycopg.OperationalError) -> str:
    """What a failed connection means: server down, wrong password, or a database that does not exist."""
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
    return f"{where} is unreachable as {user} ({detail}): is `sensorpipe stack up` running?"


@contextmanager
def connected(pg: PostgresSettings, role: Role) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection as `role`; a connection that fails, or breaks while in use, is a StorageError."""
    try:
        with psycopg.connect(pg.dsn(role=role), connect_timeout=5, autocommit=True) as conn:
            yield conn
    except psycopg.OperationalError as e:
        raise StorageError(connection_error(pg, role, e)) from e
