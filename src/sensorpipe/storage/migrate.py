"""`db migrate`: versioned, idempotent schema migrations for sensordb.

Plain SQL files in `storage/migrations/`, applied in order, each in its own transaction and recorded
in `schema_migrations` with a checksum (an applied file that was edited afterwards is refused, not
re-run). Before them, the writer and reader roles are created (or their passwords brought in line
with the settings); after them, TimescaleDB features are applied where the extension exists.
An advisory lock makes two `db migrate` at once take turns instead of racing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from sensorpipe.config import Settings
from sensorpipe.storage.errors import StorageError, connected
from sensorpipe.storage.timescale import TimescaleOutcome, apply_timescale

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 7_340_512_260_001  # pg_advisory_lock key of `db migrate`
_EARLIER_CHECKSUMS: dict[int, frozenset[str]] = {
    1: frozenset({"fa8afbcbedb461ac211e9db4f09af547c8f2dfe89b1fbfe83a8f26fc98d65b93"}),
}
"""Checksums of earlier texts of a migration that differ from its file in comments only (0001's first
line named the design page by an old name): a database that recorded one holds that migration as it is."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def matches(self, recorded: str) -> bool:
        """Whether the checksum a database recorded for this migration is of this very SQL."""
        return recorded == self.checksum or recorded in _EARLIER_CHECKSUMS.get(self.version, frozenset())


@dataclass
class MigrationReport:
    """What `db migrate` did: migrations applied now and before, roles, TimescaleDB."""

    applied: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    timescale: TimescaleOutcome | None = None


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """`NNNN_name.sql` files in version order; a gap or a duplicate version is a packaging error."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        migrations.append(Migration(int(version), name, path.read_text()))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise StorageError(f"migrations in {directory} are not numbered 1..n without gaps: {versions}")
    return migrations


def migrate(settings: Settings) -> MigrationReport:
    """Bring sensordb to the latest schema as the owner role; safe to run any number of times."""
    pg = settings.postgres
    report = MigrationReport()
    try:
        with connected(pg, "owner") as conn:
            conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
            report.roles = _ensure_roles(conn, settings)
            _ensure_table(conn)
            done = {row[0]: row[1] for row in conn.execute("select version, checksum from schema_migrations")}
            for migration in load_migrations():
                label = f"{migration.version:04d}_{migration.name}"
                if migration.version in done:
                    if not migration.matches(done[migration.version]):
                        raise StorageError(
                            f"migration {label} changed after it was applied to {pg.database}: never edit an"
                            " applied migration, add a new one"
                        )
                    report.already.append(label)
                    continue
                _apply(conn, migration, settings)
                logger.info("applied migration %s", label)
                report.applied.append(label)
            report.timescale = apply_timescale(conn, settings)
    except psycopg.errors.InsufficientPrivilege as e:
        raise StorageError(
            f"{pg.user} may not change {pg.database} ({e.diag.message_primary}): `db migrate` runs as the database"
            " owner with CREATEROLE (what `sensorpipe stack up` provisions)"
        ) from e
    return report


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        create table if not exists schema_migrations (
            version    integer primary key,
            name       text        not null,
            checksum   text        not null,
            applied_at timestamptz not null default now()
        )
        """
    )


def _apply(conn: psycopg.Connection, migration: Migration, settings: Settings) -> None:
    pg = settings.postgres
    text = migration.text.replace("@writer@", sql.Identifier(pg.writer_user).as_string(conn)).replace(
        "@reader@", sql.Identifier(pg.reader_user).as_string(conn)
    )
    with conn.transaction():
        conn.execute(text.encode())  # several statements, no parameters: one simple query
        conn.execute(
            "insert into schema_migrations (version, name, checksum) values (%s, %s, %s)",
            (migration.version, migration.name, migration.checksum),
        )


def _ensure_roles(conn: psycopg.Connection, settings: Settings) -> list[str]:
    """Login roles for the stream job and Grafana, their passwords kept equal to the settings."""
    pg = settings.postgres
    outcomes = []
    for user, password in ((pg.writer_user, pg.writer_password), (pg.reader_user, pg.reader_password)):
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (user,)).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(
            sql.SQL(verb + " role {} login password {}").format(
                sql.Identifier(user), sql.Literal(password.get_secret_value())
            )
        )
        conn.execute(
            sql.SQL("grant connect on database {} to {}").format(sql.Identifier(pg.database), sql.Identifier(user))
        )
        outcomes.append(f"{user}: {'password updated' if exists else 'created'}")
    return outcomes
