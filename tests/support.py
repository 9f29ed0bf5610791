"""Helpers shared by tests: stack homes and config files as a user would write them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from sensorpipe.config import Settings, load_settings
from sensorpipe.contract.measurements import MEASUREMENTS
from sensorpipe.stack.mosquitto import Mosquitto
from sensorpipe.stack.postgres import Postgres
from sensorpipe.stack.process import spawn, stop
from sensorpipe.stack.service import NotReady

# SENSORPIPE_TEST_PORT_OFFSET moves every test port, so two test sessions can run side by side.
PORT_OFFSET = int(os.environ.get("SENSORPIPE_TEST_PORT_OFFSET", "0"))


def ports_from(base: int) -> dict[str, int]:
    """One stack's ports; S3 also takes its port + 1..4 and each of those + 10000 (see stack/seaweedfs.py).

    Every stack of the suite has its base in STACK_BASES, all within 10,000-10,999 (a stack takes at
    most base + 14, the bench's stack base + 311), and scripts/test runs its pytest processes at offsets
    0 and 1,000 (4,000 is free for a second suite), so no two stacks meet and every port, + 10,014 included, stays under
    Linux's ephemeral range (32,768 and up), where outgoing connections would take them at random.
    """
    base += PORT_OFFSET
    return {"mqtt": base + 1, "kafka": base + 2, "kafka_controller": base + 3, "postgres": base + 4, "s3": base + 10}


STACK_BASES = {
    "session": 10_000,
    "unreachable": 10_100,
    "stack_restart": 10_200,
    "stack_taken": 10_300,
    "stack_local": 10_400,
    "faults": 10_500,
    "secure": 10_600,
    "bench": 10_650,
}
"""Each stack the suite starts (or, for `unreachable`, a stack nobody starts), by its base port."""


TEST_PORTS = ports_from(STACK_BASES["session"])


def write_config(home: Path, ports: dict[str, int] = TEST_PORTS, lake: str = "s3") -> Path:
    """A sensorpipe.toml for a stack in `home` on `ports`: what a user would write by hand."""
    config = home / "sensorpipe.toml"
    config.write_text(
        f"""\
[stack]
home = "{home}"

[mqtt]
port = {ports["mqtt"]}

[kafka]
bootstrap_servers = "127.0.0.1:{ports["kafka"]}"
controller_port = {ports["kafka_controller"]}

[postgres]
port = {ports["postgres"]}

[s3]
endpoint = "http://127.0.0.1:{ports["s3"]}"

[lake]
backend = "{lake}"
"""
    )
    return config


def fresh_home(prefix: str) -> Path:
    """A new directory every user can traverse (PostgreSQL runs as `postgres` when we are root)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    return home


def sensorpipe(
    *args: str, config: Path | None = None, timeout_s: float = 180, answer: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (`python -m sensorpipe ...`), capturing its output; `answer` goes to its stdin."""
    prefix = ["--config", str(config)] if config else []
    return subprocess.run(
        [sys.executable, "-m", "sensorpipe", *prefix, *args],
        input=answer,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def listening_addresses(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket held by `pids`, read from /proc."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # the process ended meanwhile
            continue
        for fd in fds:
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    found = []
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:
                continue
            address_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(address_hex)
            if width == 4:
                address = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                address = socket.inet_ntop(socket.AF_INET6, words)
            found.append((inodes[fields[9]], address, int(port_hex, 16)))
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (once the probe socket is closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateBroker:
    """A Mosquitto of a test's own on a free port, to stop and start at will (the session's is shared)."""

    def __init__(self, home: Path) -> None:
        ports = {**ports_from(0), "mqtt": free_port()}
        self.config = write_config(home, ports)
        self.settings = load_settings(config_file=self.config)
        self.port = self.settings.mqtt.port
        self.service = Mosquitto(self.settings)
        self.service.prepare()

    def start(self) -> None:
        spawn(self.service.command(), log_file=self.service.log_file, pid_file=self.service.pid_file)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.service.probe()
                return
            except NotReady:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        stop(self.service.pid_file)


@contextmanager
def new_database(settings: Settings) -> Iterator[str]:
    """A new, empty database owned by the pipeline's role on the stack of `settings`, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    owner = sql.Identifier(settings.postgres.user)
    with Postgres(settings).admin() as conn:
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), owner))
    try:
        yield name
    finally:
        with Postgres(settings).admin() as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


class _WithoutPreload(Postgres):
    def preload(self) -> list[str]:
        return []


class PrivatePostgres:
    """A PostgreSQL of a test's own on a free port, provisioned as `stack up` does it.

    `start(preload=False)` leaves TimescaleDB out of shared_preload_libraries although it is installed:
    the server as it is right after TimescaleDB's package was installed (the session's preloads it).
    """

    def __init__(self, home: Path) -> None:
        ports = {**ports_from(0), "postgres": free_port()}
        self.config = write_config(home, ports)
        self.settings = load_settings(config_file=self.config)
        self.service = Postgres(self.settings)

    def start(self, *, preload: bool) -> None:
        self.service = Postgres(self.settings) if preload else _WithoutPreload(self.settings)
        self.service.prepare()
        spawn(
            self.service.command(),
            log_file=self.service.log_file,
            pid_file=self.service.pid_file,
            cwd=self.service.dir,
            user=self.service.run_as(),
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.service.ready()
                break
            except NotReady:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.service.provision()

    def stop(self) -> None:
        stop(self.service.pid_file, sig=signal.SIGINT)


def _minutes_unlike_readings() -> sql.SQL:
    computed = ", ".join(
        f"count({m.name}) as count_{m.name}, avg({m.name}) as avg_{m.name}, min({m.name}) as min_{m.name},"
        f" max({m.name}) as max_{m.name}"
        for m in MEASUREMENTS
    )
    differs = " or ".join(
        [
            "r.readings is distinct from m.readings",
            *(f"r.{s}_{m.name} is distinct from m.{s}_{m.name}" for m in MEASUREMENTS for s in ("count", "min", "max")),
            *(
                f"(r.avg_{m.name} is null) <> (m.avg_{m.name} is null)"
                f" or abs(r.avg_{m.name} - m.avg_{m.name}) > 1e-9 * greatest(abs(r.avg_{m.name}), 1)"
                for m in MEASUREMENTS
            ),
        ]
    )
    return sql.SQL(
        "with r as (select date_bin('1 minute', time, timestamptz '2000-01-01 00:00:00+00') as bucket, sensor_id,"
        f" count(*) as readings, {computed} from sensor_data where sensor_id like %(like)s group by 1, 2),"
        " m as (select * from sensor_data_1m where sensor_id like %(like)s)"
        " select sensor_id, bucket, r.readings, m.readings from r full join m using (sensor_id, bucket)"
        f" where {differs} order by 1, 2"
    )


def minutes_unlike_readings(conn: psycopg.Connection[Any], sensor_like: str = "%") -> list[tuple[Any, ...]]:
    """Minutes of `sensor_data_1m` (sensors LIKE `sensor_like`) that differ from the minutes computed from
    `sensor_data` (count; each measurement's count, min, max, and average to 1e-9), or that one has and
    the other lacks: (sensor, minute, readings in sensor_data, readings in sensor_data_1m). Empty: exact."""
    return conn.execute(_minutes_unlike_readings(), {"like": sensor_like}).fetchall()
