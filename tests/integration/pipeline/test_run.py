"""`sensorpipe run` as a user runs it: the stack, bridge, stream job and simulator under one supervisor.

Each test gets its own topics, database, bucket (so lake and checkpoints) and metrics ports on the
session stack, and counts what the run stored against what Kafka holds: every record exactly once in
the database and in the lake, and no process left behind.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, TypeVar

import psycopg
import pytest
from pydantic import BaseModel, SecretStr

from sensorpipe.clients.kafka_client import watermarks
from sensorpipe.config import Settings, load_settings
from sensorpipe.config.settings import parse_assignments
from sensorpipe.stack.process import PidFile, ProcessSnapshot, group_members
from sensorpipe.storage.lake import RAW, read_dataset
from tests.ingest_support import Lane
from tests.support import free_port, listening_addresses, minutes_unlike_readings, sensorpipe

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 240

T = TypeVar("T")


class Run:
    """One `sensorpipe run` on a lane of its own; `settings` are what its children see."""

    started: ClassVar[list[Run]] = []

    def __init__(self, config: Path, database: str, *options: str) -> None:
        Run.started.append(self)
        lane = Lane()
        self.flags = [
            *lane.flags(),
            *("--set", f"postgres.database={database}"),
            *("--set", f"s3.bucket=run-{uuid.uuid4().hex[:8]}"),
            *("--set", f"bridge.metrics_port={free_port()}"),
            *("--set", f"stream.metrics_port={free_port()}"),
        ]
        self.settings = load_settings(parse_assignments(self.flags[1::2]), config)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sensorpipe", "--config", str(config), *self.flags, "run", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, timeout_s: float = RUN_TIMEOUT_S) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout_s)
        return self.process.returncode, out, err

    def child_pid(self, name: str) -> int | None:
        return PidFile(self.settings.home / "run" / f"{name}.pid").running_pid()

    def stored(self) -> int:
        with psycopg.connect(self.settings.postgres.dsn()) as conn:
            try:
                row = conn.execute("select count(*) from sensor_data").fetchone()
            except psycopg.errors.UndefinedTable:  # `run` has not migrated the database yet
                return 0
        return int(row[0]) if row else 0

    def close(self) -> None:
        """After a failed test: a second SIGINT makes `run` kill its children, as a second Ctrl+C does."""
        for _ in range(2):
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                time.sleep(0.5)
        self.process.communicate(timeout=30)


@pytest.fixture(autouse=True)
def no_run_outlives_its_test() -> Iterator[None]:
    yield
    while Run.started:
        Run.started.pop().close()


def kafka_records(settings: Settings) -> int:
    marks = watermarks(settings.kafka, settings.kafka.topic)
    assert marks is not None
    return sum(high - low for low, high in marks.values())


def assert_exactly_once(run: Run) -> int:
    """Every record on the run's topic is one row in sensor_data and one in the lake, and the one-minute
    aggregates are exactly those of sensor_data; returns how many."""
    records = kafka_records(run.settings)
    assert records > 0
    assert run.stored() == records
    lake = read_dataset(run.settings, RAW, columns=["sensor_id", "time"]).to_pylist()
    assert len(lake) == records
    assert len({(row["sensor_id"], row["time"]) for row in lake}) == records
    with psycopg.connect(run.settings.postgres.dsn(), autocommit=True) as conn:
        assert minutes_unlike_readings(conn) == [], "sensor_data_1m is not the minutes of sensor_data"
    return records


def started_pids(stderr_or_stdout: str) -> dict[str, list[int]]:
    """Every child's pids, from `run`'s event lines ("bridge started (pid 123)")."""
    found: dict[str, list[int]] = {}
    for name, pid in re.findall(r"(\w+) started \(pid (\d+)\)", stderr_or_stdout):
        found.setdefault(name, []).append(int(pid))
    return found


def assert_listening_on_loopback_only(run: Run) -> None:
    """Every socket `run` and its children listen on (metrics, Spark's driver, py4j) is bound to 127.0.0.1."""
    pids = {run.process.pid, *ProcessSnapshot.take().descendants(run.process.pid)}
    sockets = listening_addresses(pids)
    ports = {port for _pid, _address, port in sockets}
    assert {run.settings.bridge.metrics_port, run.settings.stream.metrics_port} <= ports, sockets
    exposed = [socket for socket in sockets if socket[1] not in {"127.0.0.1", "::ffff:127.0.0.1"}]
    assert exposed == [], exposed


def scrape_text(port: int | None) -> str:
    assert port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def assert_no_secret_in(texts: list[str], settings: Settings) -> None:
    """No password or key of the settings appears in what a user or a scraper sees: output, logs, metrics."""
    secrets = [
        value.get_secret_value()
        for _name, section in settings
        if isinstance(section, BaseModel)
        for _field, value in section
        if isinstance(value, SecretStr)
    ]
    assert len(secrets) >= 4  # PostgreSQL's three roles and the S3 secret key at least
    leaks = [
        (secret, text[max(text.find(secret) - 80, 0) :][:200]) for secret in secrets for text in texts if secret in text
    ]
    assert leaks == [], leaks


def assert_nothing_left(pids: dict[str, list[int]], settings: Settings) -> None:
    assert set(pids) >= {"bridge", "stream"}
    for name, started in pids.items():
        for pid in started:
            assert group_members(pid) == [], f"{name} (pid {pid}) left processes behind"
        assert not (settings.home / "run" / f"{name}.pid").exists()
    assert not (settings.home / "run" / "run.pid").exists()


def scraped(port: int | None) -> str | None:
    """The metrics text on `port`, or None while nothing listens there yet."""
    try:
        return scrape_text(port)
    except OSError:
        return None


def wait_for(run: Run, found: Callable[[], T | None], what: str, deadline: float) -> T:
    """`found()`'s first value that is not None, asked while `run` is alive and until `deadline`."""
    while (value := found()) is None:
        assert run.process.poll() is None, run.process.communicate()
        assert time.monotonic() < deadline, f"{what} not by the deadline"
        time.sleep(0.2)
    return value


def test_run_with_the_simulator_stores_every_reading_once_refuses_a_second_run_and_stops_at_its_duration(
    stack_config: Path, empty_db: str
) -> None:
    """One run for everything `run` promises on its own (its Ctrl+C stop is the fault test's, which ends so).

    The second `run` is refused as soon as the first holds its lock. The metrics and sockets are read the
    moment the stream job serves its metrics (its JVM and every socket are up), before the run can end:
    a loaded machine may take longer to get there than the simulator's 45 s, and the drain after them
    keeps the pipeline up until the job has stored what was forwarded.
    """
    run = Run(stack_config, empty_db, "--simulate", "4", "--rate", "100", "--duration", "45", "--json")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    lock = PidFile(run.settings.home / "run" / "run.pid")
    wait_for(run, lambda: lock.running_pid() == run.process.pid or None, "`run` took its lock", deadline)
    code, _, err = Run(stack_config, empty_db, "--no-view").finish(60)  # a second `run` on the same home
    assert code == 1
    assert f"another `sensorpipe run` (pid {run.process.pid}) supervises the pipeline" in err
    assert "Traceback" not in err
    stream_metrics = wait_for(
        run, lambda: scraped(run.settings.stream.metrics_port), "the stream job served its metrics", deadline
    )
    shown = [stream_metrics, scrape_text(run.settings.bridge.metrics_port)]
    assert_listening_on_loopback_only(run)
    shown.append(sensorpipe("--config", str(stack_config), *run.flags, "config", "show", "--json").stdout)

    code, out, err = run.finish()

    assert code == 0, err
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["stopped_because"] == "duration reached"
    assert summary["drained"] is True
    assert {name: child["state"] for name, child in summary["children"].items()} == {
        "stream": "stopped",
        "bridge": "stopped",
        "simulator": "finished",
    }
    assert all(child["restarts"] == 0 for child in summary["children"].values())
    events = [line for line in err.splitlines() if " • " in line]
    order = [m.group(1) for line in events if (m := re.search(r"• (\w+) (?:stopped|finished)", line))]
    assert order == ["simulator", "bridge", "stream"], err
    assert "stream job: everything forwarded is stored" in err
    assert sum(line.startswith("  database: TimescaleDB") for line in err.splitlines()) == 1, err  # on or off, why
    records = assert_exactly_once(run)
    assert records >= 4_000  # 100 readings/s for 45 s, give or take the start of the publisher
    assert summary["totals"]["mqtt_received"] == records
    shown += [out, err, *(log.read_text(errors="replace") for log in (run.settings.home / "logs").glob("*.log"))]
    assert_no_secret_in(shown, run.settings)
    assert_nothing_left(started_pids(err), run.settings)
