"""Maximum publish rate of `sensorpipe simulate`, as readings a subscriber on the same broker actually received.

For each case (QoS 0 and QoS 1 single readings, gateway batches; 1 and 2 publisher processes) it runs
`sensorpipe simulate --rate 0` as a user would, subscribes to `sensors/+/data` at the same QoS in this
process, and counts the readings received over a fixed window after a one-second warm-up. Needs a running
broker: the endpoints come from the settings (flags, SENSORPIPE_* variables, sensorpipe.toml), e.g.

    SENSORPIPE_MQTT_PORT=31883 .venv/bin/python benchmarks/simulator.py [--seconds 8] [--batch 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from sensorpipe.clients.mqtt_client import MqttError, connect, make_client, probe_connect
from sensorpipe.config import MqttSettings, load_settings

WARM_UP_S = 1.0


@dataclass(frozen=True)
class Case:
    qos: int
    batch: int
    processes: int

    @property
    def name(self) -> str:
        shape = "single readings" if self.batch == 1 else f"batches of {self.batch}"
        return f"QoS {self.qos}, {shape}, {self.processes} process(es)"


@dataclass(frozen=True)
class Figure:
    case: str
    received_messages_per_s: float
    received_readings_per_s: float
    published_messages_per_s: float
    published_readings_per_s: float
    lossless: bool


class Counter:
    """A subscriber counting messages and readings (one `"seq"` per reading) on its network thread."""

    def __init__(self, settings: MqttSettings, qos: int) -> None:
        self.messages = 0
        self.readings = 0
        self.client = make_client(settings, f"sensorpipe-bench-sub-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._count
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        connect(self.client, settings.host, settings.port)
        self.client.subscribe("sensors/+/data", qos=qos)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise MqttError("the broker did not acknowledge SUBSCRIBE")

    def _count(self, _c: Any, _u: Any, message: Any) -> None:
        self.messages += 1
        self.readings += message.payload.count(b'"seq"')

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def measure(case: Case, settings: MqttSettings, seconds: float) -> Figure:
    counter = Counter(settings, case.qos)
    command = [
        sys.executable, "-m", "sensorpipe",
        "--set", f"mqtt.host={settings.host}", "--set", f"mqtt.port={settings.port}",
        "simulate", "--sensors", "1000", "--rate", "0", "--duration", str(seconds + WARM_UP_S + 1),
        "--qos", str(case.qos), "--batch", str(case.batch), "--processes", str(case.processes), "--json",
    ]  # fmt: skip
    simulator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while counter.messages == 0 and simulator.poll() is None:
            time.sleep(0.01)
        time.sleep(WARM_UP_S)
        began, messages, readings = time.monotonic(), counter.messages, counter.readings
        time.sleep(seconds)
        elapsed = time.monotonic() - began
        messages, readings = counter.messages - messages, counter.readings - readings
        stdout, stderr = simulator.communicate(timeout=120)
    finally:
        counter.stop()
        if simulator.poll() is None:
            simulator.kill()
    if not stdout:
        raise SystemExit(f"simulate failed in case {case.name}:\n{stderr}")
    summary = json.loads(stdout)
    return Figure(
        case=case.name,
        received_messages_per_s=round(messages / elapsed, 1),
        received_readings_per_s=round(readings / elapsed, 1),
        published_messages_per_s=summary["messages_per_s"],
        published_readings_per_s=summary["readings_per_s"],
        lossless=summary["lossless"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring window per case, after warm-up")
    parser.add_argument("--batch", type=int, default=50, help="readings per message in the batch cases")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings().mqtt
    try:
        probe_connect(settings.host, settings.port, settings)
    except MqttError as e:
        raise SystemExit(f"{e}\nThe benchmark needs a running broker: start one with `sensorpipe stack up`.") from e
    cases = [Case(qos, batch, p) for qos, batch in ((0, 1), (1, 1), (0, args.batch), (1, args.batch)) for p in (1, 2)]
    figures = [measure(case, settings, args.seconds) for case in cases]
    if args.json:
        print(json.dumps([asdict(f) for f in figures], indent=2))
        return
    table = Table(title=f"sensorpipe simulate → subscriber on {settings.url}, {args.seconds:g} s per case")
    for column in ("case", "received msg/s", "received readings/s", "published msg/s", "lossless"):
        table.add_column(column)
    for f in figures:
        table.add_row(
            f.case,
            f"{f.received_messages_per_s:,.0f}",
            f"{f.received_readings_per_s:,.0f}",
            f"{f.published_messages_per_s:,.0f}",
            "yes" if f.lossless else "no",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
