"""Problem 6 and the database around it: reachable, migrated, `raw_data` JSONB, roles, TimescaleDB."""

from __future__ import annotations

from sensorpipe.config import Settings
from sensorpipe.doctor.check import Check, failed, passed, split_fix
from sensorpipe.storage.errors import PRELOAD_FIX, StorageError, connected
from sensorpipe.storage.migrate import load_migrations
from sensorpipe.storage.timescale import PRELOADED

MIGRATE = "`sensorpipe db migrate`"


def _unreachable(name: str, error: StorageError) -> Check:
    cause, fix = split_fix(str(error))
    return failed(name, cause, fix)


def check_connect(settings: Settings) -> Check:
    pg = settings.postgres
    try:
        with connected(pg, "owner") as conn:
            row = conn.execute("select current_setting('server_version')").fetchone()
    except StorageError as e:
        return _unreachable("database", e)
    version = row[0] if row else "?"
    return passed("database", f"PostgreSQL {version}, database {pg.database} as {pg.user}")


def check_migrations(settings: Settings) -> Check:
    name = "database schema"
    pg = settings.postgres
    try:
        with connected(pg, "owner") as conn:
            exists = conn.execute("select to_regclass('schema_migrations') is not null").fetchone()
            applied: dict[int, str] = {}
            if exists and exists[0]:
                applied = {row[0]: row[1] for row in conn.execute("select version, checksum from schema_migrations")}
    except StorageError as e:
        return _unreachable(name, e)
    migrations = load_migrations()
    if not applied:
        return failed(name, f"{pg.database} is not migrated (no schema_migrations)", MIGRATE)
    missing = [f"{m.version:04d}_{m.name}" for m in migrations if m.version not in applied]
    if missing:
        return failed(name, f"{pg.database} lacks migration(s) {', '.join(missing)}", MIGRATE)
    changed = [f"{m.version:04d}_{m.name}" for m in migrations if not m.matches(applied[m.version])]
    if changed:
        return failed(
            name,
            f"migration(s) {', '.join(changed)} changed after they were applied to {pg.database}",
            "run the sensorpipe version that applied them; never edit an applied migration",
        )
    unknown = sorted(set(applied) - {m.version for m in migrations})
    if unknown:
        return failed(
            name,
            f"{pg.database} has migration(s) {unknown} this sensorpipe does not know",
            "upgrade sensorpipe to the version that migrated the database",
        )
    return passed(name, f"{len(migrations)} migration(s) applied, up to date")


def check_raw_data(settings: Settings) -> Check:
    name = "raw_data jsonb"
    try:
        with connected(settings.postgres, "owner") as conn:
            row = conn.execute(
                "select data_type from information_schema.columns"
                " where table_schema = current_schema() and table_name = 'sensor_data' and column_name = 'raw_data'"
            ).fetchone()
    except StorageError as e:
        return _unreachable(name, e)
    if row is None:
        return failed(name, "sensor_data has no raw_data column", MIGRATE)
    if row[0] != "jsonb":
        return failed(
            name,
            f"sensor_data.raw_data is {row[0]}, not jsonb: the writer sends JSONB",
            "alter table sensor_data alter column raw_data type jsonb using raw_data::jsonb",
        )
    return passed(name, "sensor_data.raw_data is jsonb")


def check_roles(settings: Settings) -> Check:
    """Both roles exist and log in with the configured passwords."""
    name = "database roles"
    pg = settings.postgres
    wanted = [pg.writer_user, pg.reader_user]
    try:
        with connected(pg, "owner") as conn:
            present = {
                row[0] for row in conn.execute("select rolname from pg_roles where rolname = any(%s)", (wanted,))
            }
    except StorageError as e:
        return _unreachable(name, e)
    missing = [user for user in wanted if user not in present]
    if missing:
        return failed(name, f"role(s) {', '.join(missing)} missing", MIGRATE)
    for role in ("writer", "reader"):
        try:
            with connected(pg, role) as conn:
                conn.execute("select 1")
        except StorageError as e:
            cause, _ = split_fix(str(e))
            return failed(name, cause, f"{MIGRATE} (sets the roles' passwords from the settings)")
    return passed(name, f"{pg.writer_user} and {pg.reader_user} log in")


def check_timescale(settings: Settings) -> Check:
    """Informational unless `timescale.mode = on`: without TimescaleDB, sensor_data is a plain table."""
    name = "timescaledb"
    mode = settings.timescale.mode
    try:
        with connected(settings.postgres, "owner") as conn:
            available = conn.execute(
                "select default_version, installed_version from pg_available_extensions where name = 'timescaledb'"
            ).fetchone()
            preloaded = conn.execute(PRELOADED).fetchone() is not None
    except StorageError as e:
        return _unreachable(name, e)
    if available is None:
        if mode == "on":
            return failed(
                name,
                "timescale.mode is on but this PostgreSQL has no TimescaleDB extension",
                "use a TimescaleDB server (the timescale/timescaledb image) or set timescale.mode = auto",
            )
        return passed(name, f"not available: plain PostgreSQL tables (timescale.mode = {mode}; informational)")
    return _installed(settings, *available, preloaded=preloaded)


def _installed(settings: Settings, default: str, installed: str | None, *, preloaded: bool) -> Check:
    """TimescaleDB is available on the server: whether it is loaded, installed in the database, and used."""
    name = "timescaledb"
    mode = settings.timescale.mode
    if mode == "off":
        return passed(name, f"available ({default}) but off by configuration (timescale.mode = off)")
    if not preloaded:
        return _not_preloaded(settings, default, installed)
    if installed is None:
        if mode == "on":
            return failed(name, f"available ({default}) but not installed in {settings.postgres.database}", MIGRATE)
        return passed(name, f"available ({default}), not installed yet: {MIGRATE} installs it")
    return passed(name, f"installed ({installed})")


def _not_preloaded(settings: Settings, default: str, installed: str | None) -> Check:
    """Installed on the server but not loaded at its start: unusable, an error only where it is needed."""
    name = "timescaledb"
    if installed is not None:
        database = settings.postgres.database
        return failed(name, f"{database} uses TimescaleDB {installed}, which the server does not preload", PRELOAD_FIX)
    if settings.timescale.mode == "on":
        return failed(name, f"TimescaleDB {default} is installed on the server but not preloaded", PRELOAD_FIX)
    return passed(
        name, f"installed on the server ({default}) but not preloaded: plain tables (informational; {PRELOAD_FIX})"
    )


__all__ = ["check_connect", "check_migrations", "check_raw_data", "check_roles", "check_timescale"]
