"""PostgreSQL from the Debian package, a private cluster under the stack's home.

The server refuses to run as root, so when sensorpipe runs as root the cluster belongs to the
`postgres` account the Debian package creates. Local connections on the cluster's own socket
directory trust the OS user; TCP connections on 127.0.0.1 need the configured password.

TimescaleDB installed beside the server (its library in the server's lib directory) is preloaded:
without that, `create extension timescaledb` ends the session, and `db migrate` could only fall back to
plain tables (see docs/storage.md).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from sensorpipe.stack.service import NotReady, Service, StackError

_SUPERUSER = "postgres"
TIMESCALEDB = "timescaledb"


def _bindir() -> Path:
    """The newest installed server binaries (Debian keeps them under /usr/lib/postgresql/<major>/bin)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise StackError("PostgreSQL is not installed: run `scripts/bootstrap.sh` or `apt-get install postgresql`")


def timescaledb_library() -> Path | None:
    """TimescaleDB's loader library in the server's lib directory (Debian: beside bin/), if installed."""
    library = _bindir().parent / "lib" / f"{TIMESCALEDB}.so"
    return library if library.is_file() else None


class Postgres(Service):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit

    def ports(self) -> dict[str, int]:
        return {"postgres": self.settings.postgres.port}

    def endpoint(self) -> dict[str, str]:
        pg = self.settings.postgres
        return {"dsn": pg.dsn(masked=True)}

    def run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(_SUPERUSER)
        except KeyError as e:
            raise StackError(
                "PostgreSQL cannot run as root and there is no `postgres` account:"
                " install the Debian package (`apt-get install postgresql`)"
            ) from e
        return _SUPERUSER

    @property
    def _data(self) -> Path:
        return self.dir / "data"

    @property
    def _socket_dir(self) -> Path:
        return self.dir / "run"

    def _own(self, *paths: Path) -> None:
        user = self.run_as()
        if user is not None:
            account = pwd.getpwnam(user)
            for path in paths:
                os.chown(path, account.pw_uid, account.pw_gid)

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._socket_dir.mkdir(exist_ok=True)
        self._own(self.dir, self._socket_dir)
        if (self._data / "PG_VERSION").exists():
            return
        account = self.run_as()
        result = subprocess.run(
            [
                str(_bindir() / "initdb"),
                "-D",
                str(self._data),
                "-U",
                _SUPERUSER,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            capture_output=True,
            text=True,
            check=False,
            user=account,
            group=account,
            extra_groups=[] if account else None,
            cwd="/",
        )
        if result.returncode != 0:
            hint = ""
            if account and "ermission denied" in result.stderr:
                hint = (
                    f"\nthe `{account}` account cannot reach {self.dir}: put the stack home on a path every"
                    " user can traverse (`--home` or stack.home)"
                )
            raise StackError(f"postgres: initdb failed:\n{result.stderr.strip()[-2000:]}{hint}")

    def preload(self) -> list[str]:
        """The libraries the server loads at start: TimescaleDB's whenever it is installed beside the server."""
        return [TIMESCALEDB] if timescaledb_library() is not None else []

    def start_note(self) -> str | None:
        library = timescaledb_library()
        if TIMESCALEDB not in self.preload() or library is None:
            return None
        return f"TimescaleDB preloaded (shared_preload_libraries = {TIMESCALEDB}, found {library})"

    def command(self) -> list[str]:
        command = [
            str(_bindir() / "postgres"),
            "-D",
            str(self._data),
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"port={self.settings.postgres.port}",
            "-c",
            f"unix_socket_directories={self._socket_dir}",
        ]
        libraries = self.preload()
        if libraries:
            command += ["-c", f"shared_preload_libraries={','.join(libraries)}"]
        if TIMESCALEDB in libraries:
            command += ["-c", "timescaledb.telemetry_level=off"]
        return command

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the local socket: provisioning, and tests that need a fresh database."""
        return psycopg.connect(
            host=str(self._socket_dir),
            port=self.settings.postgres.port,
            user=_SUPERUSER,
            dbname="postgres",
            connect_timeout=2,
            autocommit=True,
        )

    def ready(self) -> None:
        try:
            with self.admin() as conn:
                conn.execute("select 1")
        except psycopg.OperationalError as e:
            raise NotReady(f"PostgreSQL on {self._socket_dir} does not answer yet: {str(e).strip()}") from e

    def provision(self) -> None:
        """The pipeline's role and database, and the password from settings (kept in sync on every `up`)."""
        pg = self.settings.postgres
        with self.admin() as conn:
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (pg.user,)).fetchone()
            verb = "alter" if exists else "create"
            conn.execute(
                sql.SQL(verb + " role {} login createrole password {}").format(
                    sql.Identifier(pg.user), sql.Literal(pg.password.get_secret_value())
                )
            )
            if not conn.execute("select 1 from pg_database where datname = %s", (pg.database,)).fetchone():
                conn.execute(
                    sql.SQL("create database {} owner {}").format(sql.Identifier(pg.database), sql.Identifier(pg.user))
                )

    def probe(self) -> str:
        """`select 1` as the pipeline's user over TCP, once provisioned; as the superuser before."""
        pg = self.settings.postgres
        try:
            with psycopg.connect(pg.dsn(), connect_timeout=2) as conn:
                row = conn.execute("select current_setting('server_version')").fetchone()
        except psycopg.OperationalError as e:
            raise NotReady(f"PostgreSQL at {self.host}:{pg.port} refused {pg.user}: {str(e).strip()}") from e
        return f"PostgreSQL {row[0] if row else '?'}, select 1 as {pg.user}"
