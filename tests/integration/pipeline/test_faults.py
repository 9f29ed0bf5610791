"""Fault injection: under a steady load, SIGKILL each part of the pipeline, then two at once, and restart it.

The test runs a stack of its own (its own ports and home, so killing Kafka cannot disturb another test)
and `sensorpipe run` on it, and publishes readings at QoS 1 like a fleet of sensors would. A stack
service is killed with its whole process group (PostgreSQL's backends die with the postmaster) and
restarted by `stack up` after a few seconds down; the bridge and the stream job are killed the same
way and left to `run`'s supervisor. After each fault the test waits until everything published before
the restart is stored, and at the end it proves the delivery guarantee: every reading the broker
acknowledged is in the database and in the lake, each exactly once, but for the one window Mosquitto's
design leaves open (LOSS_WINDOW_S), whose losses it counts. All along, the job commits the lake every
10 s and keeps it up every 30 s, and the test compacts it too from its own process (LAKE_PACE).

It prints each fault's recovery, measured from the database's `ingested_at` (docs/reliability.md):
- **stalled**: the longest time nothing was stored, from the kill on;
- **recovered**: from the kill until every reading published before the restart was stored.

Run it alone with `.venv/bin/pytest tests/integration/pipeline/test_faults.py -s` to see the table as it goes.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sensorpipe.config import Settings, load_settings
from sensorpipe.config.settings import parse_assignments
from sensorpipe.errors import SensorpipeError
from sensorpipe.pipeline.launch import bridge_subscribed
from sensorpipe.stack import Stack
from sensorpipe.stack.process import PidFile
from sensorpipe.storage.lake import RAW, read_dataset
from sensorpipe.storage.lake_upkeep import maintain_all
from tests.support import STACK_BASES, free_port, fresh_home, minutes_unlike_readings, ports_from, write_config

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

SENSORS = 20
TICK_S = 0.1
"""Each sensor publishes once per tick: 200 readings/s in all, a steady load the pipeline keeps up with."""
DOWN_S = 3.0
"""How long a killed stack service stays down before `stack up` restarts it."""
SETTLE_S = 2.0
RECOVERY_TIMEOUT_S = 240.0

STREAM_TRIGGERS = {"trigger": "10 seconds"}
LAKE_PACE = {"commit_interval_s": 10, "maintenance_interval_s": 30}
"""The job commits the lake and keeps it up far more often than by default, so that faults land in the
middle of both; the test itself compacts the lake too (`Maintainer`): a second writer beside the job's."""
MAINTAIN_EVERY_S = 20.0
"""Longer micro-batch intervals than the defaults (1 s, 10 s): a readings batch costs the job about 4 CPU-seconds
whatever its size, so under the test's load the job kept 1.35 of this machine's 2 cores busy at the defaults,
0.9 at 5 s and 0.44 at 10 s (docs/performance.md). The guarantee does not depend on the interval (a crash
finds larger batches in flight, if anything); recovery takes up to one interval longer."""

LOSS_WINDOW_S = 1.0
"""The one loss the broker's design allows (docs/reliability.md, "Limits"): Mosquitto 2.0 acknowledges a
QoS 1 message once it is in memory and saves it only at its next autosave. Killed, it takes with it the
messages it acknowledged but had not yet delivered to the bridge (milliseconds' worth: 2 readings
published 3 ms before the kill in one CI run under load); killed together with the bridge, also those the
bridge had received but not yet handed to Kafka. Only readings published at most this long before a kill
of Mosquitto may be missing, and the test reports how many were."""

STACK_SERVICES = {"mqtt", "kafka", "postgres", "s3"}
FAULTS: list[tuple[str, ...]] = [
    ("mqtt",),
    ("bridge",),
    ("kafka",),
    ("stream",),
    ("postgres",),
    ("s3",),
    ("mqtt", "bridge"),
    ("kafka", "stream"),
    ("postgres", "s3"),
]

Key = tuple[str, int]
"""A reading: its sensor id and its timestamp in milliseconds, unique per reading."""


class Maintainer:
    """`sensorpipe lake maintain`'s work every MAINTAIN_EVERY_S from this process while the job writes the
    lake: compaction, log checkpoints and VACUUM racing the job's own commits and upkeep."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runs = 0
        self.compacted = 0
        self.failures: list[str] = []  # while S3 is down, say
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(MAINTAIN_EVERY_S):
            try:
                self.compacted += sum(u.files_compacted for u in maintain_all(self.settings))
                self.runs += 1
            except SensorpipeError as e:
                self.failures.append(str(e))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class SteadyPublisher:
    """Sensors publishing at QoS 1 on their own topics at a steady rate, through broker restarts.

    paho keeps a message the broker has not acknowledged and sends it again after reconnecting; a
    reading counts as acknowledged only once its PUBACK arrived.
    """

    def __init__(self, settings: Settings) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fault-sensors")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(settings.mqtt.host, settings.mqtt.port)
        self.client.loop_start()
        self.sent: list[tuple[Key, mqtt.MQTTMessageInfo]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-sensors", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick, stamp_ms = 0, 0
        start = time.monotonic()
        while not self._stop.is_set():
            stamp_ms = max(round(time.time() * 1000), stamp_ms + 1)  # ticks that catch up stay distinct
            for index in range(SENSORS):
                sensor = f"fault-{index:02d}"
                payload = {"sensor_id": sensor, "timestamp": stamp_ms / 1000, "temperature": 21.5, "humidity": 40.0}
                info = self.client.publish(f"sensors/{sensor}/data", json.dumps(payload), qos=1)
                self.sent.append(((sensor, stamp_ms), info))
            tick += 1
            self._stop.wait(max(0.0, start + tick * TICK_S - time.monotonic()))

    def acknowledged(self, before_ms: int | None = None) -> set[Key]:
        # `is_published()` raises for a message whose first send found the client disconnected, even once
        # paho sent it again and the broker acknowledged it; the flag it guards is the truth.
        return {key for key, info in list(self.sent) if info._published and (before_ms is None or key[1] < before_ms)}

    def published(self) -> set[Key]:
        return {key for key, _ in list(self.sent)}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def close(self) -> None:
        self.stop()
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Fault:
    """One fault: what was killed, when (epoch seconds), and when it was running again."""

    targets: tuple[str, ...]
    killed_at: float
    restarted_at: float = 0.0
    recovered_at: float = 0.0
    stalled_s: float = 0.0
    restart_pids: dict[str, int] = field(default_factory=dict)
    output_mark: int = 0
    restarts: dict[str, int] = field(default_factory=dict)
    """The supervisor's restarts of the bridge and the stream job while the pipeline recovered."""

    lost: int = 0

    @property
    def name(self) -> str:
        return " + ".join(self.targets)

    @property
    def lossy(self) -> bool:
        """Whether this fault may take readings with it at all: it kills Mosquitto (LOSS_WINDOW_S)."""
        return "mqtt" in self.targets

    def may_lose(self, key: Key) -> bool:
        """Whether this fault may take `key` with it: see LOSS_WINDOW_S."""
        return self.lossy and self.killed_at - LOSS_WINDOW_S <= key[1] / 1000 <= self.killed_at

    def row(self) -> dict[str, object]:
        return {
            "fault": self.name,
            "down_s": round(self.restarted_at - self.killed_at, 1),
            "stalled_s": round(self.stalled_s, 1),
            "recovered_s": round(self.recovered_at - self.killed_at, 1),
            "restarts": self.restarts,
            "lost": self.lost,
        }


class Pipeline:
    """`sensorpipe run` on the private stack, its output in files beside it."""

    def __init__(self, config: Path) -> None:
        ports = ["--set", f"bridge.metrics_port={free_port()}", "--set", f"stream.metrics_port={free_port()}"]
        self.settings = settings = load_settings(parse_assignments(ports[1::2]), config)
        self.out = settings.home / "run.out"
        self.err = settings.home / "run.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sensorpipe", "--config", str(config), *ports, "run", "--no-view"],
                stdout=out,
                stderr=err,
                text=True,
            )

    def output(self) -> str:
        return self.events() + self.err.read_text(errors="replace")

    def events(self) -> str:
        """What `run --no-view` prints: one line per event, and the totals every 10 s."""
        return self.out.read_text(errors="replace")

    def child_pid(self, name: str) -> int | None:
        return PidFile(self.settings.home / "run" / f"{name}.pid").running_pid()

    def alive(self) -> None:
        assert self.process.poll() is None, f"`sensorpipe run` exited ({self.process.returncode}):\n{self.tail()}"

    def tail(self) -> str:
        return "\n".join(self.output().splitlines()[-30:])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(240)

    def kill(self) -> None:
        for _ in range(2):
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                time.sleep(0.5)
        if self.process.poll() is None:
            self.process.wait(60)


def stored_keys(settings: Settings) -> list[Key]:
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "select sensor_id, floor(extract(epoch from time) * 1000 + 0.5)::bigint from sensor_data"
        ).fetchall()
    return [(str(sensor), int(ms)) for sensor, ms in rows]


def stored_count(settings: Settings, before_ms: int | None = None) -> int:
    """Readings in the database, or only those published before `before_ms`."""
    query = "select count(*) from sensor_data where %s::bigint is null or time < to_timestamp(%s / 1000.0)"
    with psycopg.connect(settings.postgres.dsn(), autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(query, (before_ms, before_ms)).fetchone()
    return int(row[0]) if row else 0


def ingest_times(settings: Settings, since: float) -> list[tuple[float, float]]:
    """(published, stored) epoch seconds of every reading stored since `since`, in the order they were stored."""
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "select extract(epoch from time)::float8, extract(epoch from ingested_at)::float8 from sensor_data"
            " where ingested_at >= to_timestamp(%s) order by ingested_at",
            (since,),
        ).fetchall()
    return [(float(a), float(b)) for a, b in rows]


def kill_group(pid_file: PidFile) -> int:
    """SIGKILL a process and its whole group, as a crash or the OOM killer of a container would."""
    pid = pid_file.running_pid()
    assert pid is not None, f"nothing runs from {pid_file.path}"
    os.killpg(pid, signal.SIGKILL)
    return pid


def wait_until(condition: object, what: str, pipeline: Pipeline, timeout_s: float = RECOVERY_TIMEOUT_S) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if condition():
                return
        except psycopg.OperationalError:
            pass  # the database may be the part that is down
        pipeline.alive()
        assert time.monotonic() < deadline, f"{what} not within {timeout_s:.0f} s:\n{pipeline.tail()}"
        time.sleep(0.5)


def inject(fault: tuple[str, ...], settings: Settings, pipeline: Pipeline) -> Fault:
    """Kill every target at once; restart the stack services after DOWN_S; wait for the supervised children."""
    stack = Stack(settings)
    killed = {}
    started = Fault(fault, killed_at=time.time(), output_mark=len(pipeline.events()))
    for target in fault:
        killed[target] = kill_group(PidFile(settings.home / "run" / f"{target}.pid"))
    if STACK_SERVICES & set(fault):
        time.sleep(DOWN_S)
        stack.up()
    for target in set(fault) - STACK_SERVICES:

        def restarted(name: str = target) -> bool:
            pid = pipeline.child_pid(name)
            return pid is not None and pid != killed[name]

        wait_until(restarted, f"{target} restarted by the supervisor", pipeline)
        started.restart_pids[target] = pipeline.child_pid(target) or 0
    started.restarted_at = time.time()
    return started


def guaranteed(acknowledged: set[Key], faults: list[Fault]) -> set[Key]:
    """The `acknowledged` readings none of `faults` may take with it (LOSS_WINDOW_S).

    The recovery wait asks this every half second of 100,000 readings and more: only the faults that may
    lose readings at all are asked about each one, or the test's own polling would keep a core busy.
    """
    lossy = [fault for fault in faults if fault.lossy]
    if not lossy:
        return acknowledged
    return {key for key in acknowledged if not any(fault.may_lose(key) for fault in lossy)}


def wait_recovered(
    fault: Fault, earlier: list[Fault], settings: Settings, pipeline: Pipeline, publisher: SteadyPublisher
) -> None:
    """Until every reading published before the restart and acknowledged is stored; then measure.

    Readings this fault or an `earlier` one may take with it (LOSS_WINDOW_S) are not waited for.
    """
    before_ms = round(fault.restarted_at * 1000)

    def expected() -> set[Key]:
        return guaranteed(publisher.acknowledged(before_ms), [*earlier, fault])

    def caught_up() -> bool:
        return stored_count(settings, before_ms) >= len(expected())

    try:
        wait_until(caught_up, f"recovery from {fault.name}", pipeline)
    except AssertionError as e:
        missing = sorted(expected() - set(stored_keys(settings)), key=lambda key: key[1])
        since_kill = [round(ms / 1000 - fault.killed_at, 3) for _, ms in missing[:20]]
        raise AssertionError(f"{len(missing)} acknowledged readings missing, published at kill + {since_kill} s") from e
    times = ingest_times(settings, fault.killed_at - 1)
    before = [stored for published, stored in times if published < fault.restarted_at]
    fault.recovered_at = max(before, default=fault.killed_at)
    moments = [fault.killed_at, *(stored for _, stored in times if stored <= fault.recovered_at)]
    fault.stalled_s = max((b - a for a, b in itertools.pairwise(moments)), default=0.0)
    at_risk = {key for key in publisher.acknowledged(before_ms) if fault.may_lose(key)}
    fault.lost = len(at_risk - set(stored_keys(settings)))
    since = pipeline.events()[fault.output_mark :]
    fault.restarts = dict(Counter(re.findall(r"(\w+) started \(pid \d+\), log .* \(restart \d+\)", since)))


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[tuple[Path, Settings]]:
    home = fresh_home("sensorpipe-faults-")
    config = write_config(home, ports_from(STACK_BASES["faults"]))
    text = config.read_text()  # see STREAM_TRIGGERS and LAKE_PACE
    text = text.replace("[lake]\n", "[lake]\n" + "".join(f"{key} = {value}\n" for key, value in LAKE_PACE.items()))
    text += "\n[stream]\n" + "".join(f'{key} = "{value}"\n' for key, value in STREAM_TRIGGERS.items())
    config.write_text(text)
    settings = load_settings(config_file=config)
    stack = Stack(settings)
    try:
        stack.up()
        yield config, settings
    finally:
        stack.down(purge=True)
        shutil.rmtree(home, ignore_errors=True)


def test_every_acknowledged_reading_is_stored_exactly_once_through_crashes_of_every_part(
    fault_stack: tuple[Path, Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    config, settings = fault_stack
    pipeline = Pipeline(config)
    publisher: SteadyPublisher | None = None
    maintainer: Maintainer | None = None
    faults: list[Fault] = []
    try:
        wait_until(lambda: bridge_subscribed(pipeline.settings), "the bridge subscribed", pipeline)
        publisher = SteadyPublisher(settings)
        wait_until(lambda: stored_count(settings) > 0, "a first reading stored", pipeline)
        maintainer = Maintainer(settings)
        for targets in FAULTS:
            time.sleep(SETTLE_S)
            fault = inject(targets, settings, pipeline)
            wait_recovered(fault, faults, settings, pipeline, publisher)
            faults.append(fault)
            with capsys.disabled():
                print(f"\n  fault {json.dumps(fault.row())}", flush=True)
        publisher.stop()
        maintainer.stop()
        acknowledged = publisher.acknowledged()
        must_store = guaranteed(acknowledged, faults)
        wait_until(lambda: must_store <= set(stored_keys(settings)), "all stored", pipeline)
        assert pipeline.stop() == 0, pipeline.tail()
    finally:
        if publisher is not None:
            publisher.close()
        if maintainer is not None:
            maintainer.stop()
        pipeline.kill()

    output = pipeline.output()
    assert "Traceback" not in output
    # Ctrl+C (`run` got SIGINT): the bridge stops first, the stream job stores what it forwarded, then stops.
    assert "stream job: everything forwarded is stored" in output, pipeline.tail()
    assert "pipeline stopped (interrupted)" in output, pipeline.tail()
    events = [line for line in pipeline.events().splitlines() if " • " in line]
    order = [m.group(1) for line in events if (m := re.search(r"• (\w+) stopped", line))]
    assert order == ["bridge", "stream"], pipeline.tail()
    assert re.search(r"stored [\d,]+ · lake [\d,]+", events[-1]), pipeline.tail()  # the last progress line: totals
    for name in ("bridge", "stream"):
        assert f"{name} exited unexpectedly (killed by SIGKILL)" in output
    for fault in faults:
        for name, pid in fault.restart_pids.items():
            assert re.search(rf"{name} started \(pid {pid}\), log .* \(restart \d+\)", output), (
                f"{name}'s restart after {fault.name} was not reported"
            )

    stored = stored_keys(settings)
    published = publisher.published()
    assert len(acknowledged) >= len(FAULTS) * 20 * SENSORS  # the load went on all along
    assert must_store <= set(stored), f"{len(must_store - set(stored))} acknowledged readings lost"
    assert set(stored) <= published, "the database holds readings nobody published"
    assert len(stored) == len(set(stored))
    lake = read_dataset(settings, RAW, columns=["sensor_id", "time"]).to_pylist()
    in_lake = [(row["sensor_id"], round(row["time"].timestamp() * 1000)) for row in lake]
    assert len(in_lake) == len(set(in_lake)), f"{len(in_lake) - len(set(in_lake))} readings twice in the lake"
    assert set(in_lake) == set(stored), "the lake and the database hold different readings"
    assert maintainer.runs >= 3 and maintainer.compacted > 0, (
        maintainer.runs,
        maintainer.failures,
    )  # upkeep ran all along
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        assert conn.execute("select count(*) from sensor_rejects").fetchone() == (0,)
        assert minutes_unlike_readings(conn) == [], "sensor_data_1m is not the minutes of sensor_data"

    with capsys.disabled():
        moment = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"\n  recovery ({moment}, {len(acknowledged):,} readings acknowledged):")
        for fault in faults:
            print(f"  {json.dumps(fault.row())}")
