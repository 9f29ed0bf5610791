"""The bridge against the MQTT ceiling, measured side by side on one broker.

1. Ceiling: plain paho publish → subscribe at QoS 1 (in-flight window 100, one ~100-byte reading per
   message), the rate docs/design.md compares the bridge with.
2. Bridge: the same publisher, `sensorpipe bridge` (QoS 1, manual acknowledgements, acks=all) forwarding
   into Kafka: its sustained forward rate, its CPU per 10,000 messages/s, MQTT receive → Kafka ack
   latency p50/p99, and a loss check (records in Kafka = messages the broker acknowledged).
3. The same with gateway batches (`--batch` readings per message), and with two bridges in one share group.

Runs its own stack in a fresh home on ports 24000+ (a stack on the default ports keeps running):

    .venv/bin/python benchmarks/ingest.py [--duration 15] [--batch 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from sensorpipe.bench.ceilings import child_result, mqtt_ceiling, publish
from sensorpipe.bench.home import private_config
from sensorpipe.bridge.metrics import LATENCY_BUCKETS_S, bucket_quantile
from sensorpipe.clients.kafka_client import client_config
from sensorpipe.config import Settings, load_settings
from sensorpipe.stack import Stack
from sensorpipe.stack.process import ProcessSnapshot, cpu_seconds

BASE_PORT = 24000
_started: list[subprocess.Popen[str]] = []


class BridgeRun:
    """`sensorpipe bridge` processes on one lane, with their counters read from /metrics."""

    def __init__(self, config: Path, settings: Settings, bridges: int, lane: str | None = None) -> None:
        self.lane = lane or f"b{uuid.uuid4().hex[:6]}"
        self.topic = f"{self.lane}-data"
        self.ports = [BASE_PORT + 310 + i for i in range(bridges)]
        self.processes = []
        for index, metrics_port in enumerate(self.ports):
            flags = {
                "mqtt.topic": f"{self.lane}/+/data",
                "mqtt.legacy_topic": "",
                "kafka.topic": self.topic,
                "kafka.dlq_topic": f"{self.lane}-dlq",
                "bridge.client_id": f"{self.lane}-{index}",
                "bridge.metrics_port": str(metrics_port),
                **({"bridge.share_group": self.lane} if bridges > 1 else {}),
            }
            args = [arg for k, v in flags.items() for arg in ("--set", f"{k}={v}")]
            process = subprocess.Popen(
                [sys.executable, "-m", "sensorpipe", "--config", str(config), *args, "bridge", "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self.processes.append(process)
            _started.append(process)
        self.settings = settings
        for port in self.ports:
            self._wait_metrics(port)

    def _wait_metrics(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if "sensorpipe_bridge_mqtt_connected 1.0" in self._scrape(port):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"bridge on metrics port {port} did not connect within 60 s")

    @staticmethod
    def _scrape(port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def forwarded(self) -> float:
        return self._sum(lambda line: line.startswith("sensorpipe_bridge_forwarded_total "))[0]

    def latency_buckets(self) -> list[float]:
        """Cumulative counts of the forward-latency histogram, summed over the bridges, +Inf last."""
        return self._sum(lambda line: line.startswith("sensorpipe_bridge_forward_latency_seconds_bucket"))

    def _sum(self, wanted: Callable[[str], bool]) -> list[float]:
        totals: list[float] = []
        for port in self.ports:
            values = [float(line.split()[-1]) for line in self._scrape(port).splitlines() if wanted(line)]
            totals = [a + b for a, b in zip(totals, values, strict=True)] if totals else values
        return totals

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(process.pid) for process in self.processes)

    def kafka_records(self) -> int:
        consumer = Consumer(client_config(self.settings.kafka, **{"group.id": f"bench-{uuid.uuid4().hex}"}))
        partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
            total += high - low
        consumer.close()
        return total

    def stop(self) -> list[dict[str, Any]]:
        totals = []
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            out, _ = process.communicate(timeout=60)
            totals.append(json.loads(out))
        return totals


def window_quantiles(before: list[float], after: list[float], *qs: float) -> list[float]:
    """Latency quantiles in ms of what was forwarded between two scrapes of the histogram."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    return [(bucket_quantile(LATENCY_BUCKETS_S, delta[:-1], delta[-1], q) or 0) * 1000 for q in qs]


def service_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by the broker processes of the stack."""
    processes = ProcessSnapshot.take()
    return {
        s.name: processes.tree_cpu_seconds(pid)
        for s in stack.services
        if s.name in ("mqtt", "kafka") and (pid := s.pid_file.running_pid())
    }


def bridge_rate(config: Path, stack: Stack, duration_s: float, batch: int, bridges: int) -> dict[str, Any]:
    settings = stack.settings
    run = BridgeRun(config, settings, bridges)
    ctx = mp.get_context("spawn")
    pub_done = ctx.Queue()
    pub = ctx.Process(target=publish, args=(settings.mqtt, f"{run.lane}/+/data", duration_s, batch, pub_done))
    pub.start()
    assert pub.pid is not None

    def cpu() -> dict[str, float]:
        return {"bridge": run.cpu_seconds(), "publisher": cpu_seconds(pub.pid or 0), **service_cpu(stack)}

    time.sleep(min(3.0, duration_s / 4))  # warm-up: connections, producer id, first batches
    forwarded_0, cpu_0, buckets_0, t_0 = run.forwarded(), cpu(), run.latency_buckets(), time.monotonic()
    time.sleep(duration_s - min(3.0, duration_s / 4) - 1)
    forwarded_1, cpu_1, buckets_1, t_1 = run.forwarded(), cpu(), run.latency_buckets(), time.monotonic()
    acknowledged = child_result(pub_done, duration_s + 120, "publisher")
    pub.join()
    deadline = time.monotonic() + 300
    while run.forwarded() < acknowledged and time.monotonic() < deadline:
        time.sleep(0.5)
    run.stop()
    rate = (forwarded_1 - forwarded_0) / (t_1 - t_0)
    cores = {name: (cpu_1[name] - cpu_0[name]) / (t_1 - t_0) for name in cpu_0}
    p50, p99 = window_quantiles(buckets_0, buckets_1, 0.5, 0.99)
    in_kafka = run.kafka_records()
    return {
        "bridges": bridges,
        "batch": batch,
        "messages_per_s": rate,
        "readings_per_s": rate * batch,
        "cpu_cores": cores,
        "bridge_cpu_per_10k_msgs": cores["bridge"] / (rate / 10_000) if rate else None,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "acknowledged_by_broker": acknowledged,
        "records_in_kafka": in_kafka,
        "lost": max(0, acknowledged - in_kafka),
    }


def bridge_drain(config: Path, stack: Stack, backlog_s: float, batch: int, bridges: int) -> dict[str, Any]:
    """The bridge alone, without a publisher competing for the CPU: a backlog queued in its sessions while
    it was stopped, forwarded as fast as it can. Rate and CPU between 10 % and 90 % of the backlog."""
    settings = stack.settings
    lane = f"d{uuid.uuid4().hex[:6]}"
    BridgeRun(config, settings, bridges, lane).stop()  # the sessions exist now; Mosquitto queues for them
    ctx = mp.get_context("spawn")
    pub_done = ctx.Queue()
    pub = ctx.Process(target=publish, args=(settings.mqtt, f"{lane}/+/data", backlog_s, batch, pub_done))
    pub.start()
    backlog = child_result(pub_done, backlog_s + 120, "publisher")
    pub.join()
    run = BridgeRun(config, settings, bridges, lane)
    samples: list[tuple[float, float, float, list[float]]] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        forwarded = run.forwarded()
        samples.append((time.monotonic(), forwarded, run.cpu_seconds(), run.latency_buckets()))
        if forwarded >= backlog:
            break
        time.sleep(0.2)
    totals = run.stop()
    low = next(s for s in samples if s[1] >= 0.1 * backlog)
    high = next(s for s in samples if s[1] >= 0.9 * backlog)
    rate = (high[1] - low[1]) / (high[0] - low[0])
    cores = (high[2] - low[2]) / (high[0] - low[0])
    p50, p99 = window_quantiles(low[3], high[3], 0.5, 0.99)
    return {
        "bridges": bridges,
        "batch": batch,
        "backlog_messages": backlog,
        "messages_per_s": rate,
        "readings_per_s": rate * batch,
        "bridge_cpu_cores": cores,
        "bridge_cpu_per_10k_msgs": cores / (rate / 10_000),
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "forwarded": sum(t["forwarded"] for t in totals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per measurement")
    parser.add_argument("--batch", type=int, default=50, help="readings per gateway message")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    config = private_config("sensorpipe-bench-ingest-", BASE_PORT, lake="local")
    home = config.parent
    settings = load_settings(config_file=config)
    stack = Stack(settings)
    err = Console(stderr=True)
    try:
        stack.up()
        err.print("measuring plain paho publish → subscribe at QoS 1 …")
        ceiling = mqtt_ceiling(settings.mqtt, f"ceil{uuid.uuid4().hex[:6]}/+/data", args.duration)
        live, drain = [], []
        for batch, bridges in ((1, 1), (args.batch, 1), (1, 2)):
            err.print(f"measuring the bridge with a live publisher: batch {batch}, {bridges} bridge(s) …")
            live.append(bridge_rate(config, stack, args.duration, batch, bridges))
            err.print(f"measuring the bridge draining a backlog: batch {batch}, {bridges} bridge(s) …")
            drain.append(bridge_drain(config, stack, args.duration, batch, bridges))
    finally:
        for process in _started:
            process.kill()
        stack.down(purge=True)
        shutil.rmtree(home, ignore_errors=True)
    report = {"paho_qos1_ceiling_msgs_per_s": ceiling.messages_per_s, "live": live, "drain": drain}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print_report(report, args.duration)


def print_report(report: dict[str, Any], duration_s: float) -> None:
    ceiling = report["paho_qos1_ceiling_msgs_per_s"]
    console = Console(width=170)
    table = Table(title=f"bridge and publisher together, {duration_s:.0f} s each (ceiling: paho QoS 1 pub → sub)")
    for column in ("run", "msg/s", "readings/s", "vs ceiling", "bridge CPU/10k msg/s", "CPU cores", "p50", "p99"):
        table.add_column(column, justify="right")
    table.add_column("lost", justify="right")
    table.add_row("paho pub → sub, QoS 1", f"{ceiling:,.0f}", f"{ceiling:,.0f}", "100 %", *[""] * 5)
    for run in report["live"]:
        table.add_row(
            f"{run['bridges']} bridge(s), batch {run['batch']}",
            f"{run['messages_per_s']:,.0f}",
            f"{run['readings_per_s']:,.0f}",
            f"{100 * run['messages_per_s'] / ceiling:.0f} %",
            f"{run['bridge_cpu_per_10k_msgs']:.2f}",
            ", ".join(f"{name} {cores:.2f}" for name, cores in run["cpu_cores"].items()),
            f"{run['latency_p50_ms']:.1f} ms",
            f"{run['latency_p99_ms']:.1f} ms",
            str(run["lost"]),
        )
    console.print(table)
    table = Table(title="bridge alone, draining a backlog queued in its MQTT session")
    for column in ("run", "backlog", "msg/s", "readings/s", "vs ceiling", "bridge CPU/10k msg/s", "p50", "p99"):
        table.add_column(column, justify="right")
    for run in report["drain"]:
        table.add_row(
            f"{run['bridges']} bridge(s), batch {run['batch']}",
            f"{run['backlog_messages']:,}",
            f"{run['messages_per_s']:,.0f}",
            f"{run['readings_per_s']:,.0f}",
            f"{100 * run['messages_per_s'] / ceiling:.0f} %",
            f"{run['bridge_cpu_per_10k_msgs']:.2f}",
            f"{run['latency_p50_ms']:.1f} ms",
            f"{run['latency_p99_ms']:.1f} ms",
        )
    console.print(table)


if __name__ == "__main__":
    main()
