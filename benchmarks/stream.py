"""The Spark stream job (Kafka → PostgreSQL + lake) measured: throughput, batch durations, latency.

1. Sustained throughput: N readings pre-loaded into a fresh topic as gateway batches (JSON arrays of
   `--batch` ~100-byte readings), then `sensorpipe stream` (all its queries, as in production) at a 1 s
   trigger with `--per-trigger` readings per micro-batch at most, stopped once every reading is stored.
   Readings stored in `sensor_data` per second after the first `--warmup` readings (Spark's start-up, JIT
   compilation of the generated code: a third of the rate in a run's first half minute) until the last,
   sampled from the job's metrics endpoint (`sensorpipe_stream_sink_rows_total{sink="database"}`; the
   `readings` query writes the lake in the same micro-batch as the database); micro-batch duration
   p50/p99 of the `readings` and `aggregates_lake` queries from their progress lines (trigger start to commit,
   after warm-up); CPU per 10,000 readings of each service and of the job's JVM and Python processes; the
   database and the lake must hold every reading.
2. Latency at a steady rate: the job running continuously (1 s trigger), readings produced at `--rate`
   per second (default: half the sustained rate of 1., at most 25,000) for `--latency-warmup` seconds (JIT,
   every query's first batches; not measured), then for `--latency-duration` seconds.
   Latency of a Kafka record = when its offset was first seen stored in `sensor_data` (polled every
   100 ms: the highest stored offset per partition; a partition is written in offset order) minus the
   record's Kafka timestamp (set by the producer at append, same clock). Cross-check: `ingested_at`
   (set by PostgreSQL at the start of the inserting transaction, so it under-reports) minus the payload time.

Every job run gets a fresh topic and a lake bucket of its own (checkpoints in it): a file sink skips batch
ids that its output's `_spark_metadata` already holds, so fresh checkpoints over a used lake path would
write nothing there (and `aggregates_lake` then fails on a state version never written).

Runs its own stack in a fresh home on ports 26000+ (a stack on the default ports keeps running):

    .venv/bin/python benchmarks/stream.py [--warmup 300000] [--readings 600000] [--batch 50] [--per-trigger 50000]
        [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Message, Producer
from rich.console import Console
from rich.table import Table

from sensorpipe.bench.home import private_config
from sensorpipe.clients.kafka_client import client_config
from sensorpipe.clients.topics import create_topics
from sensorpipe.config import Settings, load_settings
from sensorpipe.stack import Stack
from sensorpipe.stack.process import ProcessSnapshot
from sensorpipe.storage.lake import RAW, read_dataset
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.s3 import ensure_bucket

BASE_PORT = 26000
METRICS_PORT = BASE_PORT + 311
POLL_S = 0.1
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # event times of the throughput runs: far from the latency run's "now"
BATCH_LINE = re.compile(r"sensorpipe\.stream: (\w+) #(\d+): ([\d,]+) rows in ([\d.]+) s")
_started: list[subprocess.Popen[str]] = []
LOGS = Path(tempfile.gettempdir())  # the jobs' stderr; main() makes a directory of its own
err = Console(stderr=True)


# ---------------------------------------------------------------------------------------------------------
# Load and the job as a subprocess.


def reading(sensor: str, moment: float, seq: int) -> dict[str, Any]:
    return {
        "sensor_id": sensor,
        "timestamp": round(moment, 3),
        "temperature": round(20 + (seq % 70) / 10, 2),
        "humidity": round(40 + (seq % 300) / 10, 1),
        "seq": seq,
    }


class Lane:
    """A topic, sensor ids, checkpoints of one job run."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.tag = f"{name}{uuid.uuid4().hex[:6]}"
        self.topic = f"bench-{self.tag}"
        # A lake of its own: a file sink skips batch ids its output's `_spark_metadata` already holds, so a
        # second job with fresh checkpoints writing into the same lake path would store nothing there.
        self.bucket = f"lake-{self.tag}"
        self.settings = settings.model_copy(update={"s3": settings.s3.model_copy(update={"bucket": self.bucket})})
        ensure_bucket(self.settings.s3)
        self.checkpoints = f"s3a://{self.bucket}/_checkpoints"
        kafka = settings.kafka.model_copy(update={"topic": self.topic, "dlq_topic": f"{self.topic}-dlq"})
        create_topics(kafka)

    def sensor(self, seq: int) -> str:
        return f"{self.tag}-{seq % 100:03d}"

    def flags(self, per_trigger_records: int) -> list[str]:
        pairs = {
            "kafka.topic": self.topic,
            "kafka.dlq_topic": f"{self.topic}-dlq",
            "s3.bucket": self.bucket,
            "stream.checkpoint_base": self.checkpoints,
            "stream.metrics_port": str(METRICS_PORT),
            "stream.trigger": "1 second",
            "stream.max_offsets_per_trigger": str(per_trigger_records),
        }
        return [arg for key, value in pairs.items() for arg in ("--set", f"{key}={value}")]

    def producer(self) -> Producer:
        conf = {"enable.idempotence": True, "linger.ms": 5, "batch.size": 1_000_000, "queue.buffering.max.ms": 5}
        return Producer(client_config(self.settings.kafka, **conf))


def preload(lane: Lane, readings: int, batch: int) -> None:
    """`readings` readings as gateway batches, every one confirmed by Kafka; event times T0 + seq ms."""
    producer = lane.producer()
    failures: list[str] = []
    start = T0.timestamp()
    for m in range(readings // batch):
        seqs = range(m * batch, (m + 1) * batch)
        value = json.dumps([reading(lane.sensor(s), start + s / 1000, s) for s in seqs], separators=(",", ":"))
        while True:
            try:
                producer.produce(
                    lane.topic,
                    value.encode(),
                    key=f"gw-{m % 30}".encode(),
                    on_delivery=lambda e, _m: failures.append(str(e)) if e else None,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) != 0 or failures:
        raise SystemExit(f"pre-loading Kafka failed: {failures[:3]}")


def start_job(config: Path, lane: Lane, per_trigger: int) -> tuple[Any, Path]:
    log = LOGS / f"{lane.tag}.log"
    cli = ["--config", str(config), *lane.flags(per_trigger), "stream", "--json"]
    command = [sys.executable, "-m", "sensorpipe", *cli]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, start_new_session=True)
    _started.append(process)
    return process, log


def scrape() -> dict[str, float]:
    """The job's metrics (name{labels} → value); empty while the endpoint is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def stored_metric(metrics: dict[str, float], sink: str = "database") -> float | None:
    return metrics.get(f'sensorpipe_stream_sink_rows_total{{sink="{sink}"}}')


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def batch_durations(log: Path, skip_rows: int = 0) -> dict[str, list[tuple[int, float]]]:
    """Per query: (rows, seconds) of each micro-batch that read something, from the progress lines, without
    the query's first such batch (code generation, connections, first checkpoint files: start-up) and the
    batches within its first `skip_rows` rows (warm-up)."""
    out: dict[str, list[tuple[int, float]]] = {}
    seen: dict[str, int] = {}
    for match in BATCH_LINE.finditer(log.read_text(errors="replace")):
        query, rows = match.group(1), int(match.group(3).replace(",", ""))
        if rows and query in seen and seen[query] >= skip_rows:
            out.setdefault(query, []).append((rows, float(match.group(4))))
        if rows:
            seen[query] = seen.get(query, 0) + rows
    return out


def lake_rows(lane: Lane, readings: int) -> int:
    end = T0 + timedelta(milliseconds=readings) + timedelta(seconds=1)
    table = read_dataset(lane.settings, RAW, start=T0, end=end, columns=["sensor_id"])
    return sum(1 for s in table.column("sensor_id").to_pylist() if s.startswith(lane.tag + "-"))


def deciles(samples: list[tuple[float, float, dict[str, float]]], start: int, readings: int) -> list[float | None]:
    """Readings/s stored within each tenth of the measured readings: how steady the rate is."""
    out: list[float | None] = []
    for tenth in range(10):
        low = next((s for s in samples if s[1] >= start + tenth / 10 * readings), None)
        high = next((s for s in samples if s[1] >= start + (tenth + 1) / 10 * readings), None)
        out.append((high[1] - low[1]) / (high[0] - low[0]) if low and high and high[0] > low[0] else None)
    return out


def cpu_by_group(groups: dict[str, int], job: int) -> dict[str, float]:
    """CPU seconds used so far by each service's process tree, and by the job's JVM and its Python side
    (driver, and the workers the JVM's Python daemon forks: their CPU lands in the daemon's when they exit)."""
    processes = ProcessSnapshot.take()
    out = {name: processes.tree_cpu_seconds(pid) for name, pid in groups.items()}
    jvm = [pid for pid in processes.descendants(job) if processes.command[pid] == "java"]
    out["job JVM"] = sum(processes.cpu[pid] for pid in jvm)
    out["job Python"] = processes.tree_cpu_seconds(job) - out["job JVM"]
    return out


def throughput(
    config: Path,
    settings: Settings,
    services: dict[str, int],
    warmup: int,
    measured: int,
    batch: int,
    per_trigger: int,
) -> dict[str, Any]:
    lane = Lane(settings, "n")
    warmup, measured = warmup // batch * batch, measured // batch * batch
    readings = warmup + measured
    err.print(f"pre-loading {readings:,} readings ({readings // batch:,} gateway batches) into {lane.topic} …")
    preload(lane, readings, batch)
    per_trigger_records = max(1, per_trigger // batch)
    err.print("running the job …")
    began = time.monotonic()
    process, log = start_job(config, lane, per_trigger_records)
    groups = [*services, "job JVM", "job Python"]
    samples: list[tuple[float, float, dict[str, float]]] = []
    first_row = None
    while process.poll() is None and time.monotonic() - began < 1800:
        metrics = scrape()
        stored = stored_metric(metrics)
        now = time.monotonic()
        if stored is not None:
            samples.append((now, stored, cpu_by_group(services, process.pid)))
            if first_row is None and stored > 0:
                first_row = now - began
            if stored >= readings and (stored_metric(metrics, "lake") or 0) >= readings:
                break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=120)
    if process.returncode != 0:
        raise SystemExit(f"the job failed ({process.returncode}); its log: {log}\n{log.read_text()[-3000:]}")
    totals = json.loads(out)
    stored_total = totals["sink_rows"].get("database", 0)
    measuring = [s for s in samples if s[1] >= warmup]
    low, high = (measuring[0], measuring[-1]) if measuring else (None, None)
    rate, cpu = None, {}
    if low and high and high[0] > low[0]:
        rate = (high[1] - low[1]) / (high[0] - low[0])
        # CPU per 10,000 readings stored, per process group, over the same window.
        cpu = {name: (high[2][name] - low[2][name]) / (high[1] - low[1]) * 10_000 for name in groups}
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        row = conn.execute("select count(*) from sensor_data where sensor_id like %s", (lane.tag + "-%",)).fetchone()
    in_database = int(row[0]) if row else 0
    # The readings query's rows are Kafka records; the aggregates' are readings (lake rows).
    durations = {
        "readings": batch_durations(log, warmup // batch).get("readings", []),
        "aggregates_lake": batch_durations(log, warmup).get("aggregates_lake", []),
    }
    result: dict[str, Any] = {
        "readings": readings,
        "warmup_readings": warmup,
        "per_trigger_readings": per_trigger_records * batch,
        "readings_per_s": rate,
        "first_row_after_s": first_row,
        "wall_s": time.monotonic() - began,
        "stored_by_job": stored_total,
        "in_database": in_database,
        "in_lake": lake_rows(lane, readings),
        "rejected": sum(totals["rejects"].values()),
        "readings_per_s_by_decile": deciles(measuring, warmup, measured),
        "cpu_s_per_10k_readings": cpu,
        "cpu_cores_busy": sum(cpu.values()) * (rate or 0) / 10_000,
    }
    for query in ("readings", "aggregates_lake"):
        seconds = [d for _, d in durations.get(query, [])]
        result[f"{query}_batches"] = len(seconds)
        result[f"{query}_batch_p50_s"] = quantile(seconds, 0.5)
        result[f"{query}_batch_p99_s"] = quantile(seconds, 0.99)
    return result


# ---------------------------------------------------------------------------------------------------------
# Latency at a steady rate.


class Tracker:
    """Kafka records produced (partition → [(offset, Kafka timestamp ms)], in offset order) and when each was
    first seen stored; `poll` runs in its own thread every POLL_S."""

    def __init__(self, settings: Settings, lane: Lane) -> None:
        self.settings, self.lane = settings, lane
        self.produced: dict[int, list[tuple[int, int]]] = {}
        self.seen: dict[int, list[float]] = {}  # partition → first-seen wall-clock time of produced[p][i]
        self.stop = threading.Event()
        self.failures: list[str] = []

    def delivered(self, error: Any, message: Message) -> None:
        if error:
            self.failures.append(str(error))
            return
        partition, offset = message.partition(), message.offset()
        self.produced.setdefault(partition, []).append((offset, message.timestamp()[1]))  # type: ignore[arg-type]

    def pending(self) -> int:
        return sum(len(records) - len(self.seen.get(p, [])) for p, records in list(self.produced.items()))

    def poll(self) -> None:
        conn = psycopg.connect(self.settings.postgres.dsn(), autocommit=True)
        while not self.stop.is_set():
            horizon = self._horizon()
            if horizon is not None:
                snapshot = time.time()  # a row in the result was committed before the query's snapshot
                rows = conn.execute(
                    "select kafka_partition, max(kafka_offset) from sensor_data"
                    " where time >= %s and sensor_id like %s group by 1",
                    (datetime.fromtimestamp(horizon - 1, UTC), self.lane.tag + "-%"),
                ).fetchall()
                for partition, newest in rows:
                    records = self.produced.get(partition, [])
                    seen = self.seen.setdefault(partition, [])
                    while len(seen) < len(records) and records[len(seen)][0] <= newest:
                        seen.append(snapshot)
            time.sleep(POLL_S)
        conn.close()

    def _horizon(self) -> float | None:
        """Kafka time (s) of the oldest record not seen yet; None when every produced record was seen."""
        oldest = [
            records[len(self.seen.get(p, []))][1] / 1000
            for p, records in list(self.produced.items())
            if len(self.seen.get(p, [])) < len(records)
        ]
        return min(oldest) if oldest else None

    def latencies(self) -> list[float]:
        return [
            seen - records[i][1] / 1000
            for p, records in self.produced.items()
            for i, seen in enumerate(self.seen.get(p, []))
        ]


def wait_until(condition: Any, timeout_s: float, what: str, process: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise SystemExit(f"the job exited ({process.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"no {what} within {timeout_s:.0f} s")
        time.sleep(0.2)


def latency(  # noqa: PLR0915
    config: Path, settings: Settings, rate: float, duration_s: float, warmup_s: float, batch: int, per_trigger: int
) -> dict[str, Any]:
    lane = Lane(settings, "l")
    tracker = Tracker(settings, lane)
    producer = lane.producer()
    seq = 0

    def send(count: int) -> None:
        nonlocal seq
        for _ in range(count):
            now = time.time()
            value = json.dumps([reading(lane.sensor(seq + i), now + i / 1e6, seq + i) for i in range(batch)])
            while True:
                try:
                    producer.produce(
                        lane.topic, value.encode(), key=f"gw-{seq % 30}".encode(), on_delivery=tracker.delivered
                    )
                    break
                except BufferError:
                    producer.poll(0.01)
            seq += batch
            producer.poll(0)

    err.print("starting the job continuously for the latency run …")
    process, log = start_job(config, lane, max(1, per_trigger // batch))
    poller = threading.Thread(target=tracker.poll, daemon=True)
    poller.start()
    try:
        send(1)  # the first batch compiles and connects everything
        producer.flush(30)
        wait_until(lambda: tracker.pending() == 0, 300, "first row in the database", process)

        def steady(seconds: float) -> float:
            """Produce at `rate` for `seconds`; returns the readings/s achieved."""
            began, sent_messages = time.monotonic(), 0
            while (elapsed := time.monotonic() - began) < seconds:
                due = int(elapsed * rate / batch) - sent_messages
                if due > 0:
                    send(due)
                    sent_messages += due
                else:
                    producer.poll(0.002)
            return sent_messages * batch / (time.monotonic() - began)

        err.print(f"warming up at {rate:,.0f} readings/s for {warmup_s:.0f} s (JIT, every query's first batches) …")
        steady(warmup_s)
        tracker.produced.clear()
        tracker.seen.clear()
        err.print(f"producing {rate:,.0f} readings/s for {duration_s:.0f} s …")
        achieved = steady(duration_s)
        producer.flush(60)
        wait_until(lambda: tracker.pending() == 0, 120, "stored copy of every produced record", process)
    finally:
        tracker.stop.set()
        poller.join(10)
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
    durations = batch_durations(log)
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        cross = conn.execute(
            "select percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from ingested_at - time))"
            " from sensor_data where sensor_id like %s and time >= %s",
            (lane.tag + "-%", datetime.fromtimestamp(time.time() - duration_s - 120, UTC)),
        ).fetchone()
    values = tracker.latencies()
    db_batches = [d for _, d in durations.get("readings", [])]
    return {
        "target_readings_per_s": rate,
        "achieved_readings_per_s": achieved,
        "duration_s": duration_s,
        "records": len(values),
        "readings": len(values) * batch,
        "latency_p50_s": quantile(values, 0.5),
        "latency_p95_s": quantile(values, 0.95),
        "latency_p99_s": quantile(values, 0.99),
        "latency_max_s": max(values) if values else None,
        "ingested_at_p50_s": cross[0][0] if cross and cross[0] else None,
        "ingested_at_p99_s": cross[0][1] if cross and cross[0] else None,
        "readings_batch_p50_s": quantile(db_batches, 0.5),
        "readings_batch_p99_s": quantile(db_batches, 0.99),
        "produce_failures": len(tracker.failures),
    }


# ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=600_000, help="readings measured per throughput run")
    parser.add_argument(
        "--warmup", type=int, default=300_000, help="readings stored before measuring (JIT, first batches)"
    )
    parser.add_argument("--batch", type=int, default=50, help="readings per gateway batch (Kafka record)")
    parser.add_argument("--per-trigger", type=int, default=50_000, help="readings per micro-batch at most")
    parser.add_argument("--rate", type=float, help="readings/s of the latency run (default: half the sustained)")
    parser.add_argument("--latency-duration", type=float, default=40.0, help="seconds of steady load measured")
    parser.add_argument("--latency-warmup", type=float, default=40.0, help="seconds of steady load before that")
    parser.add_argument("--skip-latency", action="store_true", help="leave out the latency run")
    parser.add_argument("--latency-only", action="store_true", help="only the latency run (give --rate)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep-logs", action="store_true", help="keep the jobs' logs (their path is printed)")
    args = parser.parse_args()

    global LOGS  # noqa: PLW0603
    LOGS = Path(tempfile.mkdtemp(prefix="bench-stream-logs-"))
    config = private_config("sensorpipe-bench-stream-", BASE_PORT)
    settings = load_settings(config_file=config)
    stack = Stack(settings)
    report: dict[str, Any] = {"batch": args.batch, "runs": []}
    try:
        stack.up()
        migrate(settings)
        services = {state.name: state.pid for state in stack.status() if state.pid}
        if args.latency_only and not args.rate:
            parser.error("--latency-only needs --rate")
        if not args.latency_only:
            report["runs"].append(
                throughput(config, settings, services, args.warmup, args.readings, args.batch, args.per_trigger)
            )
        sustained = (report["runs"][0]["readings_per_s"] if report["runs"] else None) or 10_000.0
        rate = args.rate or min(sustained / 2, 25_000.0)
        with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
            conn.execute("analyze sensor_data")
        if not args.skip_latency:
            report["latency"] = latency(
                config, settings, rate, args.latency_duration, args.latency_warmup, args.batch, args.per_trigger
            )
    finally:
        for process in _started:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        stack.down(purge=True)
        shutil.rmtree(config.parent, ignore_errors=True)
        if args.keep_logs:
            err.print(f"the jobs' logs: {LOGS}")
        else:
            shutil.rmtree(LOGS, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return
    print_report(report)


def _f(value: float | None, fmt: str = ",.0f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def print_report(report: dict[str, Any]) -> None:
    console = Console(width=170)
    if report["runs"]:
        print_throughput(console, report)
    print_latency(console, report)


def print_throughput(console: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"stream job on a pre-loaded topic (gateway batches of {report['batch']})")
    columns = ("readings", "per trigger", "readings/s measured", "first row after", "readings batch p50")
    for column in (*columns, "p99", "agg_1m batch p50", "p99", "in database", "in lake", "rejected"):
        table.add_column(column, justify="right")
    for run in report["runs"]:
        table.add_row(
            f"{run['readings']:,}",
            f"{run['per_trigger_readings']:,}",
            _f(run["readings_per_s"]),
            _f(run["first_row_after_s"], ".1f", " s"),
            _f(run["readings_batch_p50_s"], ".2f", " s"),
            _f(run["readings_batch_p99_s"], ".2f", " s"),
            _f(run["aggregates_lake_batch_p50_s"], ".2f", " s"),
            _f(run["aggregates_lake_batch_p99_s"], ".2f", " s"),
            f"{run['in_database']:,}",
            f"{run['in_lake']:,}",
            f"{run['rejected']:,}",
        )
    console.print(table)
    table = Table(title="CPU seconds per 10,000 readings stored after warm-up, per process group, on 2 cores")
    groups = list(report["runs"][0]["cpu_s_per_10k_readings"])
    for column in (*groups, "total", "cores busy"):
        table.add_column(column, justify="right")
    for run in report["runs"]:
        cpu = run["cpu_s_per_10k_readings"]
        table.add_row(
            *(_f(cpu.get(name), ".2f") for name in groups),
            _f(sum(cpu.values()), ".2f"),
            _f(run["cpu_cores_busy"], ".2f"),
        )
    console.print(table)


def print_latency(console: Console, report: dict[str, Any]) -> None:
    lat = report.get("latency")
    if lat is None:
        return
    table = Table(title="Kafka append → row queryable in sensor_data, job running at a 1 s trigger")
    for column in ("target/s", "achieved/s", "records", "p50", "p95", "p99", "max", "ingested_at p50", "p99"):
        table.add_column(column, justify="right")
    table.add_row(
        _f(lat["target_readings_per_s"]),
        _f(lat["achieved_readings_per_s"]),
        f"{lat['records']:,}",
        *(_f(lat[k], ".2f", " s") for k in ("latency_p50_s", "latency_p95_s", "latency_p99_s", "latency_max_s")),
        *(_f(lat[k], ".2f", " s") for k in ("ingested_at_p50_s", "ingested_at_p99_s")),
    )
    console.print(table)


if __name__ == "__main__":
    main()
