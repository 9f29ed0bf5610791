"""`sensorpipe bench`: the whole local pipeline under a controlled load, measured from outside.

The bench owns everything it measures: a fresh home on ports of its own (`home.private_config`), so the
cold start is real and a user's stack and data are never touched. In order:

1. Cold start: stack up, migrations, topics, bucket (`launch.prepare`), then the stream job and the bridge
   as supervised children (`launch.child_specs` and `sequence.RunSequence`, as `sensorpipe run` starts
   them); once the broker confirmed the bridge's subscription, a light simulator runs until the first
   row is in `sensor_data`.
   Cold start → first row is the time from before the stack started to that row.
2. Each mode (one reading per message, then gateway batches of K) starts by reading the size of the
   lake's `raw` (batch K runs on the lake batch 1 filled), then runs steps: a `sensorpipe simulate`
   process offers a rate for at least `steps.step_length` (`--duration`, and 10 triggers of the stream
   job's readings query in the measured window); when the stream job's micro-batches ran slower than the
   trigger, the bench lets the load go on until the window holds 10 of them (up to
   `steps.EXTENSION_LIMIT` times as long), then stops it (SIGINT: the simulator drains its
   acknowledgements and reports). Then the bench waits until the stream job committed every record (the
   drain) and the lake its staged readings, so steps never overlap and each starts with no backlog.
   While a step runs the bench samples once a second: every stage's counter from the bridge's and the
   stream job's metrics, the exact backlog of the `readings` query (its checkpoint against Kafka's end
   offsets), the stream job's publish → stored latency histogram, and CPU time and resident memory of
   every process tree; between those samples it reads the stream job's counters every `figures.TICK_S`
   (rows stored, micro-batches), which times each micro-batch's commit for the landing rate. Every step
   is judged by `steps.judge` (with `--max`, the steps follow `steps.RateSearch`, then one more step at
   half the highest sustainable rate gives the latency the p99 target is about).
3. Accounting: after the last step, every reading of the mode's time window is counted in the database
   and in the lake and compared with what the broker acknowledged to the simulator.
4. Ceilings: the children stop and each stage is measured alone on the same stack (`ceilings.measure`).

Figures from metrics (rates, latency) are read between two samples, so the warm-up of a step (its
first quarter, at most 5 s) is left out; losses and duplicates come from the sinks themselves.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka.admin import AdminClient

from sensorpipe.bench.accounting import Accounting, from_counts
from sensorpipe.bench.ceilings import measure as measure_ceilings
from sensorpipe.bench.figures import (
    TICK_S,
    Probe,
    Step,
    Tick,
    batches_between,
    components,
    latency,
    measured_batches,
    p99_series,
    rate_series,
    step_outcome,
    step_report,
)
from sensorpipe.bench.home import private_config
from sensorpipe.bench.report import (
    LOAD_COMPONENT,
    BenchReport,
    Ceiling,
    LakeSize,
    Machine,
    ModeReport,
    StepReport,
    command_line,
    now,
)
from sensorpipe.bench.steps import (
    EXTENSION_LIMIT,
    MIN_BATCHES,
    RateSearch,
    Verdict,
    judge,
    measured_start,
    step_length,
)
from sensorpipe.clients.kafka_client import admin_client
from sensorpipe.config import Settings, load_settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.monitoring.scrape import ScrapeError, scrape
from sensorpipe.monitoring.top import StreamFigures, stage_totals, stream_figures, take_snapshot
from sensorpipe.pipeline.launch import BRIDGE, STREAM, LaunchError, RunOptions, child_specs, prepare, stream_backlog
from sensorpipe.pipeline.sequence import Drain, RunSequence
from sensorpipe.pipeline.supervisor import ChildState, Supervisor
from sensorpipe.stack import Stack
from sensorpipe.stack.process import ProcessSnapshot, log_tail, pss_bytes
from sensorpipe.storage.errors import connected
from sensorpipe.storage.lake import RAW, delta_table, explained, read_dataset, table_files
from sensorpipe.storage.staging import staged_files

SAMPLE_S = 1.0
TICK_TIMEOUT_S = 0.5
DRAIN_TIMEOUT_S = 180.0
"""How long the stream job may take to store a step's backlog before the bench gives up on it."""
FIRST_ROW_TIMEOUT_S = 300.0
WARMUP_RATE = 200.0
SIMULATOR_RATE_PER_PROCESS = 4_000.0
"""Messages per second one simulator process offers comfortably; more messages get more processes."""
SEARCH_START_K = 10.0
"""With `--max`, the batch-K search starts at this multiple of `--rate`."""


class BenchError(SensorpipeError):
    """The bench cannot go on; the message names the cause and, where there is one, the fix."""


@dataclass(frozen=True)
class BenchOptions:
    rate: float = 2_000.0
    """Readings per second offered in both modes; with `search`, where the batch-1 search starts."""
    search: bool = False
    duration_s: float = 30.0
    """Seconds of load per step, at least (`steps.step_length`)."""
    sensors: int = 100
    batch: int = 50
    ceiling_s: float = 10.0
    """Seconds per stage ceiling."""
    warmup_s: float = 10.0
    """The cold-start simulator keeps publishing this long after the first row: JIT and connection warm-up."""
    base_port: int = 19_000
    keep: bool = False
    """Keep the bench's home (logs, data) and leave its stack up."""


def trigger_seconds(trigger: str) -> float:
    """Spark's `processingTime` text ("1 second", "500 milliseconds") in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(millisecond|second|minute|hour)s?\s*", trigger)
    if match is None:
        raise ValueError(f"{trigger!r} is not a trigger like '1 second'")
    unit = {"millisecond": 0.001, "second": 1.0, "minute": 60.0, "hour": 3600.0}[match.group(2)]
    return float(match.group(1)) * unit


def processes_for(rate: float, batch: int) -> int:
    """Simulator processes for `rate` readings/s in messages of `batch`: 1, or 2 on a bigger load."""
    return 1 if rate / batch <= SIMULATOR_RATE_PER_PROCESS else 2


class Bench:
    """One bench run on its own stack; `run()` returns the report and leaves nothing running."""

    def __init__(
        self,
        options: BenchOptions,
        say: Callable[[str], None] = lambda _line: None,
        status: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.options = options
        self.say = say
        self.status = status
        self.config = private_config("sensorpipe-bench-", options.base_port)
        self.settings = load_settings(config_file=self.config)
        self.stack = Stack(self.settings)
        self.supervisor = Supervisor(
            child_specs(["--config", str(self.config)], RunOptions()),
            self.settings.home,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.sequence = RunSequence.for_settings(
            self.settings, self.supervisor, report=lambda event: self.say(event.message)
        )
        self.trigger_s = trigger_seconds(self.settings.stream.trigger)
        self.simulator: subprocess.Popen[str] | None = None

    @property
    def home(self) -> Path:
        return self.settings.home

    @functools.cached_property
    def kafka_admin(self) -> AdminClient:
        """One Kafka client for the once-a-second backlog, made once the stack is up."""
        return admin_client(self.settings.kafka)

    def run(self) -> BenchReport:
        """Cold start, both modes, the ceilings; the stack goes down and the home is removed unless `keep`."""
        try:
            cold_start = self._cold_start()
            modes = [self._mode(batch, cold_start) for batch in (1, self.options.batch)]
            self._stop_children()
            ceilings = self._ceilings()
        finally:
            self._cleanup()
        return BenchReport(Machine.current(), now(), command_line(), tuple(modes), tuple(ceilings))

    # --- start ------------------------------------------------------------------------------------

    def _cold_start(self) -> float:
        began = time.monotonic()
        self.status("cold start: stack, migrations, topics, bucket ...")
        try:
            prepare(self.settings, lambda what, line: self.status(f"cold start: {what}: {line}"))
        except LaunchError as e:
            raise BenchError(str(e)) from e
        self.sequence.start()
        self.status("cold start: waiting for the bridge's subscription ...")

        def turn() -> None:
            self._check_children()
            self._deadline(began, "the bridge to subscribe")

        self.sequence.wait_subscribed(turn, tick_s=0.2)
        self.simulator = self._simulate(WARMUP_RATE, 1, FIRST_ROW_TIMEOUT_S)
        self.status("cold start: waiting for the first row in sensor_data ...")
        while not self._rows_exist():
            self._check_children()
            self._deadline(began, "the first row in sensor_data")
            time.sleep(0.2)
        cold = time.monotonic() - began
        self.say(f"cold start → first row in sensor_data: {cold:.1f} s")
        self.status(f"warming up for {self.options.warmup_s:g} s ...")
        time.sleep(self.options.warmup_s)
        self._end_simulator()
        self._drain(time.monotonic(), [])
        return cold

    def _deadline(self, began: float, what: str) -> None:
        if time.monotonic() - began > FIRST_ROW_TIMEOUT_S:
            raise BenchError(
                f"no {what} within {FIRST_ROW_TIMEOUT_S:.0f} s of the cold start: read the logs in {self.home / 'logs'}"
            )

    def _check_children(self) -> None:
        """A crash is restarted by the supervisor, as under `run`; the bench says so (its figures are affected)."""
        if not self.sequence.poll():
            raise self._gave_up()

    def _gave_up(self) -> BenchError:
        child = self.supervisor.gave_up[0]
        tail = "\n".join(log_tail(child.log_file, 8))
        return BenchError(f"{child.name} keeps crashing; the last lines of {child.log_file}:\n{tail}")

    def _rows_exist(self) -> bool:
        with connected(self.settings.postgres, "reader") as conn:
            return conn.execute("select exists (select 1 from sensor_data)").fetchone() == (True,)

    # --- load ------------------------------------------------------------------------------------

    def _simulate(self, rate: float, batch: int, duration_s: float) -> subprocess.Popen[str]:
        command = [
            *(sys.executable, "-m", "sensorpipe", "--config", str(self.config), "simulate"),
            *("--sensors", str(self.options.sensors), "--rate", f"{rate:g}", "--batch", str(batch)),
            *("--duration", f"{duration_s:g}", "--processes", str(processes_for(rate, batch)), "--json"),
        ]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def _end_simulator(self) -> dict[str, Any]:
        """Stop the simulator if it still runs (it drains its acknowledgements) and read its JSON summary."""
        simulator, self.simulator = self.simulator, None
        if simulator is None:
            return {}
        if simulator.poll() is None:
            simulator.send_signal(signal.SIGINT)
        out, _ = simulator.communicate(timeout=120)
        try:
            summary: dict[str, Any] = json.loads(out)
        except json.JSONDecodeError as e:
            raise BenchError(f"the simulator exited with {simulator.returncode} without its summary") from e
        return summary

    # --- modes and steps -------------------------------------------------------------------------

    def _mode(self, batch: int, cold_start: float) -> ModeReport:
        began = time.monotonic()
        probes: list[Probe] = []
        steps: list[Step] = []
        judged: list[StepReport] = []
        label = "batch 1" if batch == 1 else f"batch {batch}"
        lake = lake_size(self.settings)
        self.say(f"{label}: the lake's raw at the start: {lake.describe() if lake else 'unreadable'}")
        planned = step_length(self.options.duration_s, self.trigger_s)

        def run(rate: float, kind: str) -> StepReport:
            step = self._step(label, rate, batch, began, probes, planned)
            steps.append(step)
            outcome = step_outcome(step, probes, batch)
            try:
                verdict = judge(outcome, self.trigger_s)
            except ValueError as e:  # too few lag samples (Kafka or the checkpoint unreadable): no verdict
                verdict = Verdict(False, f"not judged: {e}", outcome.landed, None)
            judged.append(step_report(step, verdict, probes, STREAM, kind))
            mark = "sustainable" if verdict.sustainable else "not sustainable"
            what = " (half the highest sustainable)" if kind == "half" else ""
            self.say(f"{label}: {rate:,.0f} readings/s{what} {mark}: {verdict.reason}")
            return judged[-1]

        if self.options.search:
            start = self.options.rate * (1 if batch == 1 else SEARCH_START_K)
            search = RateSearch(start=start, min_rate=min(100.0, start))
            while (rate := search.next_rate()) is not None:
                search.record(rate, run(rate, "search").sustainable)
            best = search.best
            index = next((i for i, s in enumerate(steps) if s.rate == best), len(steps) - 1)
            headline, measured = steps[index], judged[index]
            half = None
            if best is not None:
                run(best / 2, "half")
                half = steps[-1]
        else:
            measured = run(self.options.rate, "fixed")
            headline, best, half = steps[-1], None, None
        window = (steps[0].wall_start, steps[-1].wall_end)
        if not steps[-1].drained:  # a last chance: what is still in Kafka is not lost, only late
            steps[-1].drained = self._drain(began, probes, label)
        accounting = account_sinks(self.settings, *window, sum(s.acknowledged for s in steps))
        if not steps[-1].drained:
            self.say(f"{label}: the stream job had not stored everything yet: 'lost' includes readings still in Kafka")
        self.say(
            f"{label}: acknowledged {accounting.acknowledged:,}; lost {accounting.lost_db}/{accounting.lost_lake},"
            f" duplicated {accounting.duplicated_db}/{accounting.duplicated_lake} (database/lake)"
        )
        return ModeReport(
            batch=batch,
            offered_rate=headline.rate,
            sustained_db=measured.landed,
            sustained_lake=lake_landing(self.settings, headline),
            accounting=accounting,
            latency=latency(probes, headline),
            latency_half_rate=latency(probes, half) if half is not None else None,
            max_sustainable=best,
            steps=tuple(judged),
            components=components(probes, headline),
            cold_start_s=cold_start,
            rates=rate_series(probes, batch),
            latency_p99=p99_series(probes),
            window=(window[0].timestamp(), window[1].timestamp()),
            lake_at_start=lake,
            step_length_s=planned,
            stream_cpu_per_10k=measured.stream_cpu_per_10k,
        )

    def _step(self, label: str, rate: float, batch: int, began: float, probes: list[Probe], planned: float) -> Step:
        """Offer `rate` for `planned` seconds, longer if the measured window holds fewer than MIN_BATCHES
        micro-batches by then; then drain, and wait for the lake's commit."""
        limit = planned * EXTENSION_LIMIT
        step = Step(rate=rate, duration_s=planned, start=time.monotonic() - began, wall_start=datetime.now(UTC))
        self.simulator = self._simulate(rate, batch, limit)
        while self.simulator.poll() is None:
            tick = time.monotonic()
            probe = self._probe(began)
            probes.append(probe)
            ran = probe.t - step.start
            self._check_children()
            extended = ""
            if step.stopped is None and ran >= planned:
                counted = batches_between(step.ticks, measured_start(step.start, probe.t), probe.t)
                if counted is None or counted >= MIN_BATCHES:
                    self.simulator.send_signal(signal.SIGINT)  # it stops publishing, drains and reports
                    step.stopped = time.monotonic() - began
                else:
                    extended = f", extended: {counted}/{MIN_BATCHES} micro-batches"
            self.status(
                f"{label}: offering {rate:,.0f} readings/s ({ran:.0f}/{planned:.0f} s{extended}) {_line(probe)}"
            )
            self._read_ticks(step, began, until=tick + SAMPLE_S)
        step.sim_end, step.wall_end = time.monotonic() - began, datetime.now(UTC)
        summary = self._end_simulator()
        step.acknowledged = int(summary.get("readings_acked", 0))
        step.duration_s = float(summary.get("elapsed_s") or step.duration_s)
        if not summary.get("lossless", False):
            self.say(f"{label}: the simulator lost readings before the broker took them: {summary}")
        counted = measured_batches(step)
        if step.stopped is None and counted is not None and counted < MIN_BATCHES:
            self.say(
                f"{label}: {rate:,.0f} readings/s: only {counted} micro-batches in the measured window"
                f" of {step.load_end - step.start:.0f} s of load"
            )
        step.drained = self._drain(began, probes, label)
        step.drained_at = time.monotonic() - began
        if step.drained:
            self._await_lake(began, probes, label)
        step.settled_at = probes[-1].t
        return step

    def _read_ticks(self, step: Step, began: float, until: float) -> None:
        """Read the stream job's counters every TICK_S until `until` (monotonic clock), for the landing rate."""
        while (now := time.monotonic()) < until:
            tick = self._tick(began)
            if tick is not None:
                step.ticks.append(tick)
            time.sleep(max(min(now + TICK_S, until) - time.monotonic(), 0.0))

    def _tick(self, began: float) -> Tick | None:
        """The stream job's rows stored and micro-batches now, timed at the middle of the read; None if it did not
        answer in time (a missed tick only coarsens the timing of one commit)."""
        stream = self.settings.stream
        if stream.metrics_port is None:
            return None
        asked = time.monotonic()
        try:
            counters = stream_figures(scrape(stream.metrics_host, stream.metrics_port, TICK_TIMEOUT_S))
        except (ScrapeError, ValueError):
            return None
        t = (asked + time.monotonic()) / 2 - began
        return Tick(t, counters.sink_rows.get("database", 0), counters.batch_duration.count)

    def _await_lake(self, began: float, probes: list[Probe], label: str) -> None:
        """Sample until the lake committed what the stream job staged: it commits every
        `lake.commit_interval_s`, and as soon as the readings go idle, which they are once drained."""
        deadline = time.monotonic() + self.settings.lake.commit_interval_s + DRAIN_TIMEOUT_S
        while staged_files(self.settings):
            if time.monotonic() > deadline:
                self.say(f"{label}: the lake did not commit the staged readings in time")
                return
            probes.append(self._probe(began))
            self.status(f"{label}: waiting for the lake's commit {_line(probes[-1])}")
            time.sleep(SAMPLE_S)
        probes.append(self._probe(began))

    def _drain(self, began: float, probes: list[Probe], label: str = "warm-up") -> bool:
        """Sample until the stream job committed every record on the topic (or DRAIN_TIMEOUT_S passed)."""

        def backlog() -> int | None:
            probes.append(self._probe(began))
            return probes[-1].backlog

        def waiting(left: int | None) -> bool:
            self.status(f"{label}: the stream job is storing the last {left or '?'} record(s) {_line(probes[-1])}")
            return True  # a backlog that cannot be read now may be read at the next sample

        drained = self.sequence.drain(backlog, waiting, timeout_s=DRAIN_TIMEOUT_S, tick_s=SAMPLE_S)
        if drained.outcome is Drain.GAVE_UP:
            raise self._gave_up()
        if drained.outcome is Drain.TIMED_OUT:
            self.say(f"{label}: the stream job did not catch up within {DRAIN_TIMEOUT_S:.0f} s")
        return drained.outcome is Drain.STORED

    # --- sampling --------------------------------------------------------------------------------

    def _pids(self) -> dict[str, int]:
        pids = {s.name: pid for s in self.stack.services if (pid := s.pid_file.running_pid()) is not None}
        for name in (BRIDGE, STREAM):
            child = self.supervisor.children[name]
            if child.state is ChildState.RUNNING and child.pid is not None:
                pids[name] = child.pid
        if self.simulator is not None and self.simulator.poll() is None:
            pids[LOAD_COMPONENT] = self.simulator.pid
        return pids

    def _probe(self, began: float) -> Probe:
        processes = ProcessSnapshot.take()
        pids = self._pids()
        cpu = {name: processes.tree_cpu_seconds(pid) for name, pid in pids.items()}
        rss = {name: sum(pss_bytes(p) for p in (pid, *processes.descendants(pid))) for name, pid in pids.items()}
        snapshot = take_snapshot(self.settings, read_database=False)
        stream = snapshot.stream
        return Probe(
            t=time.monotonic() - began,
            totals=stage_totals(snapshot),
            backlog=stream_backlog(self.settings, self.kafka_admin),
            buckets=(stream.end_to_end_buckets or None) if isinstance(stream, StreamFigures) else None,
            cpu=cpu,
            rss=rss,
        )

    # --- the end ---------------------------------------------------------------------------------

    def _stop_children(self) -> None:
        """Drained already, after the last step: the bridge, then the stream job."""
        self.sequence.stop(stopping=lambda name: self.status(f"stopping {name} ..."))

    def _ceilings(self) -> list[Ceiling]:
        batches = [1, self.options.batch]
        return measure_ceilings(self.settings, batches, self.options.ceiling_s, on_stage=self.status)

    def _cleanup(self) -> None:
        if self.simulator is not None and self.simulator.poll() is None:
            self.simulator.kill()
        for event in self.supervisor.kill_all():
            self.say(event.message)
        if self.options.keep:
            self.say(f"kept the bench's stack and home: {self.home} (`sensorpipe --config {self.config} stack down`)")
            return
        self.status("stopping the bench's stack ...")
        self.stack.down(purge=True)
        shutil.rmtree(self.home, ignore_errors=True)


def account_sinks(settings: Settings, start: datetime, end: datetime, acknowledged: int) -> Accounting:
    """The readings timestamped in [start, end] in both sinks, by (sensor_id, time), against `acknowledged`."""
    query = "select count(*), count(distinct (sensor_id, time)) from sensor_data where time >= %s and time <= %s"
    with connected(settings.postgres, "reader") as conn:
        row = conn.execute(query, (start, end)).fetchone()
    db_rows, db_distinct = (int(row[0]), int(row[1])) if row else (0, 0)
    lake = read_dataset(settings, RAW, start=start, end=end + timedelta(microseconds=1), columns=["sensor_id", "time"])
    return from_counts(
        acknowledged,
        db_rows=db_rows,
        db_distinct=db_distinct,
        lake_rows=lake.num_rows,
        lake_distinct=distinct_keys(lake),
    )


def lake_size(settings: Settings) -> LakeSize | None:
    """The lake's `raw` now, from its Delta log's add actions (delta-rs); None when it cannot be read."""
    try:
        with explained(settings):
            table = delta_table(settings, RAW)
            if table is None:
                return LakeSize(0, 0, 0, None)
            actions = table_files(table)
            version = table.version()
    except (SensorpipeError, OSError):
        return None
    counted = "num_records" in actions.column_names
    return LakeSize(
        rows=int(pc.sum(actions["num_records"]).as_py() or 0) if counted else None,
        files=actions.num_rows,
        bytes=int(pc.sum(actions["size_bytes"]).as_py() or 0),
        version=version,
    )


def lake_landing(settings: Settings, step: Step) -> float:
    """Readings/s the lake took of a step's load, its warm-up left out: those timestamped in the measured
    window, counted once the lake committed them, over the window's length.

    The lake commits every `lake.commit_interval_s`, not per micro-batch, so its counter rises in steps
    that a short window may miss entirely; what it holds after the step (caught up within one interval,
    `_await_lake`) is what it kept up with.
    """
    window_s = step.load_end - step.warm
    if window_s <= 0:
        return 0.0
    first = step.wall_start + timedelta(seconds=step.warm - step.start)
    last = step.wall_start + timedelta(seconds=step.load_end - step.start)
    return int(read_dataset(settings, RAW, start=first, end=last, columns=["time"]).num_rows) / window_s


def distinct_keys(table: pa.Table) -> int:
    """Distinct (sensor_id, time) pairs of a lake table: a reading written twice counts once."""
    if table.num_rows == 0:
        return 0
    return int(table.group_by(["sensor_id", "time"]).aggregate([]).num_rows)


def _line(probe: Probe) -> str:
    totals = probe.totals
    parts = [
        f"{label} {totals[key]:,}"
        for key, label in (("database_rows", "stored"), ("lake_rows", "lake"))
        if totals.get(key) is not None
    ]
    if probe.backlog is not None:
        parts.append(f"lag {probe.backlog:,}")
    return " · ".join(parts)


__all__ = [
    "Bench",
    "BenchError",
    "BenchOptions",
    "account_sinks",
    "distinct_keys",
    "lake_size",
    "processes_for",
    "trigger_seconds",
]
