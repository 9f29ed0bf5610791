"""The simulator's publisher: paced, buffered, reconnecting forever, and exact about what it lost.

The original stack's publisher gave up after five connection attempts (problem 9). This one keeps trying
with `Backoff`, generating readings on schedule into its own bounded buffer while the broker is away.

Exact accounting needs the buffer to be ours, not paho's: paho silently drops a QoS 0 publish that finds no
connection, and forgets the QoS 0 packets still unwritten when a connection breaks. So a message reaches
paho only while connected, at most `window` messages are with paho at a time, and when a connection breaks
every message paho had not yet confirmed (written to the socket for QoS 0, PUBACK/PUBCOMP for QoS 1/2)
goes back to the front of the buffer and a fresh client is made. Every message ends up exactly once as
acked, dropped (buffer full) or unacked (still held when the drain timeout ran out). A resent QoS 1/2
message may reach subscribers twice: the usual at-least-once, never a loss.

Each publisher process drives its paho client's socket itself (select, loop_read, loop_write): no network
thread, no wake-up pipe written on every publish. `simulate` runs one or more of them as processes, each on
its own share of the sensors, the rate and the count, and sums what they report.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import select
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from multiprocessing.connection import wait
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from sensorpipe.clients.backoff import Backoff
from sensorpipe.clients.mqtt_client import make_client, make_v5_client, refused_publish
from sensorpipe.config import MqttSettings
from sensorpipe.simulator.readings import Fleet, FleetSpec, Message, sensor_id

# QoS 1/2: messages awaiting PUBACK/PUBCOMP at once. docs/design.md ("Performance targets"): 100 gave ≈8,600 msg/s;
# unbounded windows collapse because paho scans its whole message dict on every acknowledgement.
INFLIGHT_WINDOW = 100
# QoS 0: messages handed to paho but not yet written, when the socket pushes back.
UNWRITTEN_WINDOW = 1000
# --rate 0: generate ahead of the connection by this many messages, never more (nothing is dropped).
AHEAD = 1000
CONNACK_TIMEOUT_S = 10.0
REPORT_EVERY_S = 0.25
IDLE_WAIT_S = 0.05


@dataclass(frozen=True)
class Job:
    """One simulation run as the user asked for it."""

    fleet: FleetSpec
    rate: float = 0.0  # readings per second in total; 0: as fast as the broker takes them
    count: int | None = None  # readings in total
    duration_s: float | None = None
    qos: int = 1
    buffer: int = 100_000
    processes: int = 1
    drain_timeout_s: float = 10.0
    client_id: str = "sensorpipe-sim"

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("--rate is readings per second: give 0 (as fast as possible) or more")
        if self.count is not None and self.duration_s is not None:
            raise ValueError("give --count or --duration, not both")
        if self.count is not None and self.count < 1:
            raise ValueError("--count must be at least 1")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("--duration must be more than 0 seconds")
        if self.qos not in (0, 1, 2):
            raise ValueError("--qos must be 0, 1 or 2")
        if self.buffer < 1:
            raise ValueError("--buffer must hold at least 1 message")
        if not 1 <= self.processes <= self.fleet.sensors:
            raise ValueError(f"--processes must be between 1 and --sensors ({self.fleet.sensors}): each needs a sensor")
        if self.drain_timeout_s < 0:
            raise ValueError("--drain-timeout must be 0 seconds or more")

    def fleet_of(self, index: int) -> Fleet:
        """Process `index`'s fleet: every P-th sensor, sequence numbers index, index + P, ... and its own gateway."""
        p = self.processes
        return Fleet(
            self.fleet,
            range(index + 1, self.fleet.sensors + 1, p),
            gateway=f"gw-{index + 1:02d}",
            seq_start=index,
            seq_step=p,
            stream=index,
        )

    def sender_of(self, index: int) -> str:
        """Who process `index` publishes as, when it is one sender: its gateway (batches) or its one sensor."""
        if self.fleet.batch > 1:
            return f"gw-{index + 1:02d}"
        if self.processes != self.fleet.sensors:
            raise ValueError("one login per process needs one sensor per process: --processes equal to --sensors")
        return sensor_id(index + 1)

    def pacer_of(self, index: int) -> Pacer:
        count = None if self.count is None else len(range(index, self.count, self.processes))
        return Pacer(self.rate / self.processes, self.fleet.batch, count, self.duration_s)


class Pacer:
    """When messages are due: message j carries readings j*K+1 .. (j+1)*K and is due once the last of them is."""

    def __init__(self, rate: float, batch: int, count: int | None = None, duration_s: float | None = None) -> None:
        self.rate = rate
        self.batch = batch
        self.count = count
        self.duration_s = duration_s
        self.total = None if count is None else math.ceil(count / batch)

    def due(self, elapsed_s: float) -> int:
        """How many messages should have been made after `elapsed_s` seconds (rate > 0)."""
        if self.duration_s is not None:
            elapsed_s = min(elapsed_s, self.duration_s)
        readings = self.rate * elapsed_s
        if self.count is not None and readings >= self.count:
            return self.total or 0
        return int(readings // self.batch)

    def due_at(self, made: int) -> float:
        """Seconds after the start at which message number `made` (0-based) is due (rate > 0)."""
        return (made + 1) * self.batch / self.rate

    def size(self, made: int) -> int:
        """Readings in message number `made`: a full batch, or what is left of the count."""
        if self.count is None:
            return self.batch
        return min(self.batch, self.count - made * self.batch)

    def done(self, made: int, elapsed_s: float) -> bool:
        if self.total is not None and made >= self.total:
            return True
        return self.duration_s is not None and elapsed_s >= self.duration_s


class Outbox:
    """Messages waiting to be published and messages with paho, within one bound; every message counted once.

    sent = acked + dropped + held, at every moment. When the bound is hit, the newest message is dropped.
    """

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.queue: deque[Message] = deque()
        self.pending: dict[int, Message] = {}
        self.sent = self.acked = self.dropped = self.malformed = 0
        self.readings = self.readings_acked = self.readings_dropped = 0

    @property
    def held(self) -> int:
        return len(self.queue) + len(self.pending)

    def offer(self, message: Message) -> bool:
        """Take a new message; False when it was dropped because the buffer is full."""
        self.sent += 1
        self.readings += message.readings
        if message.malformed is not None:
            self.malformed += 1
        if self.held >= self.bound:
            self.dropped += 1
            self.readings_dropped += message.readings
            return False
        self.queue.append(message)
        return True

    def ack(self, message: Message) -> None:
        self.acked += 1
        self.readings_acked += message.readings

    def ack_mid(self, mid: int) -> None:
        """paho confirmed pending message `mid` (PUBACK/PUBCOMP, or written to the socket for QoS 0)."""
        message = self.pending.pop(mid, None)
        if message is not None:
            self.ack(message)

    def requeue(self) -> int:
        """A connection broke: what paho had not confirmed goes back to the front of the queue, in order."""
        returned = list(self.pending.values())
        self.queue.extendleft(reversed(returned))
        self.pending.clear()
        return len(returned)


@dataclass
class Stats:
    """What one publisher process has done so far; summed over processes for the live line and the summary."""

    sent: int = 0
    acked: int = 0
    dropped: int = 0
    malformed: int = 0
    readings: int = 0
    readings_acked: int = 0
    readings_dropped: int = 0
    buffered: int = 0
    connected: int = 0
    reconnects: int = 0
    failed: int = 0
    elapsed_s: float = 0.0

    @property
    def unacked(self) -> int:
        return self.sent - self.acked - self.dropped

    @property
    def readings_unacked(self) -> int:
        return self.readings - self.readings_acked - self.readings_dropped

    @property
    def lossless(self) -> bool:
        return self.dropped == 0 and self.unacked == 0 and self.failed == 0

    def as_row(self) -> tuple[float, ...]:
        return tuple(float(v) for v in astuple(self))

    @classmethod
    def from_row(cls, row: list[float]) -> Stats:
        values: dict[str, Any] = {
            f.name: v if f.name == "elapsed_s" else int(v) for f, v in zip(fields(cls), row, strict=True)
        }
        return cls(**values)

    @classmethod
    def combine(cls, parts: list[Stats]) -> Stats:
        total = cls()
        for f in fields(cls):
            values = [getattr(p, f.name) for p in parts]
            setattr(total, f.name, max(values) if f.name == "elapsed_s" else sum(values))
        return total

    def as_json(self) -> dict[str, Any]:
        elapsed = self.elapsed_s or 1e-9
        return {
            "sent": self.sent,
            "acked": self.acked,
            "dropped": self.dropped,
            "unacked": self.unacked,
            "malformed": self.malformed,
            "readings": self.readings,
            "readings_acked": self.readings_acked,
            "readings_dropped": self.readings_dropped,
            "readings_unacked": self.readings_unacked,
            "reconnects": self.reconnects,
            "failed_processes": self.failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "messages_per_s": round(self.acked / elapsed, 1),
            "readings_per_s": round(self.readings_acked / elapsed, 1),
        }


class PublishRefused(RuntimeError):
    """The broker's ACL refused a message: retrying cannot help, the login or the topic must change."""


_CONNECTION_GONE = {MQTTErrorCode.MQTT_ERR_NO_CONN, MQTTErrorCode.MQTT_ERR_CONN_LOST}
"""`publish` results that mean the message never left: NO_CONN when paho knew the connection was down,
CONN_LOST when its write found the socket broken (a broker killed a moment ago). Both go back to the buffer."""


class Publisher:
    """One MQTT client publishing one process's share of the job until it is done or told to stop.

    `v5=True` speaks MQTT v5, whose PUBACK carries a reason code: a message the broker's ACL refused then
    stops the publisher with `PublishRefused` (MQTT 3.1.1 acknowledges it as if it had been taken).
    """

    def __init__(
        self,
        job: Job,
        index: int,
        settings: MqttSettings,
        *,
        should_stop: Callable[[], bool],
        report: Callable[[Stats], None],
        log: Callable[[str], None],
        v5: bool = False,
    ) -> None:
        self.job = job
        self.settings = settings
        self.v5 = v5
        self.refused: str | None = None
        self.client_id = f"{job.client_id}-{index + 1}"
        self.fleet = job.fleet_of(index)
        self.pacer = job.pacer_of(index)
        self.outbox = Outbox(job.buffer)
        self.window = min(INFLIGHT_WINDOW if job.qos else UNWRITTEN_WINDOW, job.buffer)
        self.should_stop = should_stop
        self.report = report
        self.log = log
        self.backoff = Backoff(initial_s=0.1, max_s=5.0)
        self.client: mqtt.Client | None = None
        self.connected = False
        self.connect_began = 0.0
        self.next_attempt = 0.0
        self.failures = 0
        self.connections = 0
        self.lost: str | None = None
        self.unwritten: dict[int, mqtt.MQTTMessageInfo] = {}
        self.made = 0
        self.elapsed = 0.0

    @property
    def url(self) -> str:
        return self.settings.url

    def run(self) -> Stats:
        start = time.monotonic()
        drain_until: float | None = None
        last_report = 0.0
        while True:
            now = time.monotonic()
            self.elapsed = now - start
            if drain_until is None:
                stopping = self.should_stop()
                if not stopping:
                    self._generate()
                if stopping or self.pacer.done(self.made, self.elapsed):
                    drain_until = now + self.job.drain_timeout_s
            if drain_until is not None and (self.outbox.held == 0 or now >= drain_until):
                break
            if self.refused is not None:
                self._close()
                self.report(self.stats())
                raise PublishRefused(self.refused)
            if self.client is None:
                if now >= self.next_attempt:
                    self._connect(now)
            elif self.connected:
                self._flush()
            elif now - self.connect_began > CONNACK_TIMEOUT_S:
                self.lost = f"no CONNACK within {CONNACK_TIMEOUT_S:.0f} s"
            self._network(self._wait(start, now, drain_until is None))
            if now - last_report >= REPORT_EVERY_S:
                self.report(self.stats())
                last_report = now
        self._close()
        stats = self.stats()
        self.report(stats)
        return stats

    def stats(self) -> Stats:
        box = self.outbox
        return Stats(
            sent=box.sent,
            acked=box.acked,
            dropped=box.dropped,
            malformed=box.malformed,
            readings=box.readings,
            readings_acked=box.readings_acked,
            readings_dropped=box.readings_dropped,
            buffered=box.held,
            connected=int(self.connected),
            reconnects=max(0, self.connections - 1),
            elapsed_s=self.elapsed,
        )

    def _generate(self) -> None:
        if self.pacer.rate > 0:
            target = self.pacer.due(self.elapsed)
        else:
            target = self.made + max(0, AHEAD - len(self.outbox.queue)) if self.connected else self.made
        if self.pacer.total is not None:
            target = min(target, self.pacer.total)
        now = time.time()
        while self.made < target:
            self.outbox.offer(self.fleet.next_message(now, self.pacer.size(self.made)))
            self.made += 1

    def _wait(self, start: float, now: float, generating: bool) -> float:
        """How long the network may block: until the next message is due, the next attempt, or a short idle."""
        wait_s = IDLE_WAIT_S
        more = self.outbox.queue or (generating and self.pacer.rate == 0)
        if self.connected and more and len(self.outbox.pending) < self.window:
            return 0.0
        if generating and self.pacer.rate > 0:
            wait_s = min(wait_s, start + self.pacer.due_at(self.made) - now)
        if self.client is None:
            wait_s = min(wait_s, self.next_attempt - now)
        return max(0.0, wait_s)

    def _connect(self, now: float) -> None:
        if self.v5:
            client = make_v5_client(self.settings, self.client_id)
        else:
            client = make_client(self.settings, self.client_id)
        client.max_inflight_messages_set(self.window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        if self.job.qos:
            client.on_publish = self._on_publish  # for QoS 0, paho builds two objects per call: poll instead
        try:
            client.connect(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        except (OSError, ValueError) as e:
            cause = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            self._retry_later(now, f"cannot reach MQTT broker at {self.settings.host}:{self.settings.port} ({cause})")
            return
        self.client = client
        self.connect_began = now

    def _retry_later(self, now: float, why: str) -> None:
        self.failures += 1
        delay = self.backoff.next_delay()
        self.next_attempt = now + delay
        self.log(f"{why}; retry {self.failures} in {delay:.1f} s; {self.outbox.held:,} messages buffered")

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self.lost = f"the broker refused the login ({reason}): check mqtt.username and mqtt.password"
            return
        self.connected = True
        self.connections += 1
        self.backoff.reset()
        verb = "connected to" if self.connections == 1 else "reconnected to"
        after = f" after {self.failures} failed attempt(s)" if self.failures else ""
        self.failures = 0
        self.log(f"{verb} {self.url}{after}; {self.outbox.held:,} messages buffered")

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.lost = f"connection lost ({reason})"

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            message = self.outbox.pending.get(mid)
            self.refused = self.refused or refused_publish(self.settings, message.topic if message else "?", reason)
            return
        self.outbox.ack_mid(mid)

    def _flush(self) -> None:
        """Hand buffered messages to paho while the window has room."""
        client, box, qos = self.client, self.outbox, self.job.qos
        assert client is not None
        while box.queue and len(box.pending) < self.window and self.lost is None:
            message = box.queue.popleft()
            info = client.publish(message.topic, message.payload, qos)
            if info.rc in _CONNECTION_GONE:
                box.queue.appendleft(message)
                self.lost = self.lost or "connection lost"
            elif info.is_published():
                box.ack(message)
            else:
                box.pending[info.mid] = message
                if not qos:
                    self.unwritten[info.mid] = info

    def _settle_written(self) -> None:
        """QoS 0 messages paho has written to the socket since `publish` returned are acknowledged."""
        for mid, info in list(self.unwritten.items()):
            if info.is_published():
                del self.unwritten[mid]
                self.outbox.ack_mid(mid)

    def _network(self, timeout: float) -> None:
        client = self.client
        if client is None:
            time.sleep(timeout)
            return
        if self.lost is None:
            sock = client.socket()
            if sock is None:
                self.lost = "connection closed"
            else:
                readable, _, _ = select.select([sock], [sock] if client.want_write() else [], [], timeout)
                if readable:
                    client.loop_read()
                if client.want_write():
                    client.loop_write()
                client.loop_misc()
                if self.unwritten:  # written by loop_write, or by a later publish that flushed them first
                    self._settle_written()
        if self.lost is not None:
            self._drop_connection(self.lost)

    def _drop_connection(self, why: str) -> None:
        client, self.client = self.client, None
        was_connected, self.connected = self.connected, False
        self.lost = None
        if client is not None:
            client.on_disconnect = None
            client.disconnect()
        self.unwritten.clear()
        returned = self.outbox.requeue()
        if was_connected:
            why = f"{why} on {self.url}, {returned:,} unconfirmed messages back in the buffer"
        else:
            why = f"{why} on {self.url}"
        self._retry_later(time.monotonic(), why)

    def _close(self) -> None:
        """Say goodbye to the broker; whatever is still held stays counted as unacked."""
        if self.client is not None:
            self.client.on_disconnect = None
            self.client.disconnect()
            self.client = None
        self.connected = False


@contextmanager
def _stop_on_signals(flag: Any) -> Iterator[None]:
    """SIGINT/SIGTERM set a shared flag (no lock: safe in a handler) that every publisher process polls."""

    def handler(_signum: int, _frame: Any) -> None:
        flag.value = 1

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _publisher_process(
    job: Job, index: int, settings: MqttSettings, v5: bool, flag: Any, rows: Any, events: Any
) -> None:
    parent = os.getppid()
    width = len(fields(Stats))
    prefix = f"[{index + 1}/{job.processes}] " if job.processes > 1 else ""

    def report(stats: Stats) -> None:
        rows[index * width : (index + 1) * width] = stats.as_row()

    try:
        Publisher(
            job,
            index,
            settings,
            should_stop=lambda: flag.value != 0 or os.getppid() != parent,
            report=report,
            log=lambda line: events.put(prefix + line),
            v5=v5,
        ).run()
    except PublishRefused as e:
        events.put(f"{prefix}{e}")
        sys.exit(2)
    except Exception as e:  # reported to the parent as one line; the exit code marks the failure
        events.put(f"{prefix}publisher failed: {type(e).__name__}: {e}")
        sys.exit(2)


def simulate(
    job: Job,
    settings: MqttSettings,
    *,
    on_progress: Callable[[Stats], None],
    on_event: Callable[[str], None],
    progress_every_s: float = 1.0,
    logins: Sequence[MqttSettings] | None = None,
) -> Stats:
    """Run `job.processes` publisher processes to the end; `on_progress` gets their sum about once a second.

    Ctrl+C or SIGTERM stops generation; each process then drains for up to `job.drain_timeout_s`.
    `logins`, one per process (on a secure stack each `Job.sender_of` as itself), make the publishers speak
    MQTT v5, so that a message the broker's ACL refuses is reported, not counted as acknowledged.
    """
    ctx = multiprocessing.get_context("fork")  # `python -m sensorpipe` has no __main__ guard for spawn
    flag = ctx.Value("b", 0, lock=False)
    width = len(fields(Stats))
    rows = ctx.Array("d", job.processes * width, lock=False)
    events = ctx.SimpleQueue()

    def snapshot() -> list[Stats]:
        return [Stats.from_row(list(rows[i * width : (i + 1) * width])) for i in range(job.processes)]

    def forward_events() -> None:
        while not events.empty():
            on_event(events.get())

    with _stop_on_signals(flag):
        processes = [
            ctx.Process(
                target=_publisher_process,
                args=(job, i, logins[i] if logins else settings, logins is not None, flag, rows, events),
                name=f"sensorpipe-simulate-{i + 1}",
            )
            for i in range(job.processes)
        ]
        for process in processes:
            process.start()
        try:
            while running := [p.sentinel for p in processes if p.exitcode is None]:
                wait(running, timeout=progress_every_s)
                forward_events()
                if any(p.exitcode is None for p in processes):
                    on_progress(Stats.combine(snapshot()))
        finally:
            flag.value = 1
            for process in processes:
                process.join()
    forward_events()
    parts = snapshot()
    for part, process in zip(parts, processes, strict=True):
        part.failed = int(process.exitcode != 0)
        part.connected = 0
    return Stats.combine(parts)


__all__ = ["Job", "Outbox", "Pacer", "PublishRefused", "Publisher", "Stats", "simulate"]
