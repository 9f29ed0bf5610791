"""Session fixtures: one local stack of real services for the whole test session, on its own ports.

The test stack lives in a fresh home (so every run starts from nothing) and listens on ports of its
own, so a developer's stack on the default ports keeps running while the suite runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sensorpipe.config import Settings, load_settings
from sensorpipe.stack import Stack
from sensorpipe.stack.postgres import Postgres
from tests.ingest_support import BridgeProcess, Lane
from tests.support import PrivateBroker, PrivatePostgres, fresh_home, new_database, write_config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def stack_config() -> Iterator[Path]:
    home = fresh_home("sensorpipe-test-")
    config = write_config(home)
    stack = Stack(load_settings(config_file=config))
    try:
        stack.up()
        yield config
    finally:
        stack.down(purge=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_settings(stack_config: Path) -> Settings:
    return load_settings(config_file=stack_config)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No sensorpipe or original-stack variable from the caller's environment leaks into a test."""
    from sensorpipe.config.env import CONFIG_FILE_ENV, LEGACY_ENV_NAMES

    for name in list(os.environ):
        if name.startswith("SENSORPIPE_") or name in LEGACY_ENV_NAMES.values() or name == CONFIG_FILE_ENV:
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def start_bridge(stack_config: Path) -> Iterator[Callable[..., BridgeProcess]]:
    """Starts `sensorpipe bridge` processes on the session stack; any still running at the end is killed."""
    started: list[BridgeProcess] = []

    def start(lane: Lane, *extra: str, client_id: str = "bridge", sets: tuple[str, ...] = ()) -> BridgeProcess:
        bridge = BridgeProcess(stack_config, lane, *extra, client_id=client_id, sets=sets)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        if bridge.process.poll() is None:
            bridge.kill()


@pytest.fixture
def private_broker() -> Iterator[PrivateBroker]:
    """A Mosquitto of the test's own (not started yet), stopped and deleted afterwards."""
    home = fresh_home("sensorpipe-broker-")
    broker = PrivateBroker(home)
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def spark(stack_settings: Settings) -> Iterator[SparkSession]:
    """One SparkSession per pytest process, with the pinned jars, shared by every test that needs Spark:
    a JVM start costs more CPU than most of the tests that use it."""
    from sensorpipe.stream import build_session

    session = build_session(stack_settings, "sensorpipe-tests")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def empty_db(stack_settings: Settings) -> Iterator[str]:
    """A new, empty database owned by the pipeline's role on the session stack, dropped afterwards."""
    with new_database(stack_settings) as name:
        yield name


@pytest.fixture(scope="session")
def timescaledb(stack_settings: Settings) -> str:
    """The TimescaleDB version the session stack's PostgreSQL preloads (`stack up` preloads it when installed).

    Without it the TimescaleDB tests fail, never skip: a skipped test proves nothing.
    """
    with Postgres(stack_settings).admin() as conn:
        row = conn.execute("select default_version from pg_available_extensions where name = 'timescaledb'").fetchone()
        preload = conn.execute("select current_setting('shared_preload_libraries')").fetchone()
    if row is None:
        reason = "TimescaleDB is not installed beside PostgreSQL: `scripts/bootstrap.sh --test` installs it"
    elif preload is None or "timescaledb" not in str(preload[0]):
        reason = f"TimescaleDB {row[0]} is installed but the session stack's PostgreSQL does not preload it"
    else:
        return str(row[0])
    pytest.fail(reason)


@pytest.fixture(scope="session")
def unloaded_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL of its own with TimescaleDB installed but not preloaded (see PrivatePostgres)."""
    home = fresh_home("sensorpipe-unloaded-")
    server = PrivatePostgres(home)
    try:
        server.start(preload=False)
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
