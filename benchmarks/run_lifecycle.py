"""`sensorpipe run` from a user's side: cold start to the first stored row, recovery after a killed
stream job, and the clean stop after Ctrl+C (with the drain), in a fresh home on ports of its own
(25000+), so a stack on the default ports keeps running.

1. Cold: no stack, no data: `sensorpipe run --simulate 10 --rate 500` until the first row is in
   `sensor_data` (stack start, migrations, topics, the stream job's JVM and first micro-batch).
2. Recovery: SIGKILL the stream job's driver; time until `run` restarted it and a row published after
   the kill is stored.
3. Stop: SIGINT to `run`; time until it exited, and the readings stored against those acknowledged.
4. `sensorpipe doctor` on the same running stack: its wall time.

    .venv/bin/python benchmarks/run_lifecycle.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from sensorpipe.bench.home import private_config
from sensorpipe.clients.kafka_client import watermarks
from sensorpipe.config import Settings, load_settings
from sensorpipe.stack import Stack
from sensorpipe.stack.process import PidFile, log_tail

BASE_PORT = 25000
TIMEOUT_S = 300


def _first_row_after(settings: Settings, since: datetime, process: subprocess.Popen[str], log: Path) -> float:
    """Monotonic time at which `sensor_data` first holds a reading timestamped after `since`."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = "\n".join(log_tail(log))
            raise SystemExit(f"run exited early with {process.returncode}:\n{output}")
        try:
            with psycopg.connect(settings.postgres.dsn(), connect_timeout=2) as conn:
                row = conn.execute("select count(*) from sensor_data where time > %s", (since,)).fetchone()
            if row and row[0]:
                return time.monotonic()
        except psycopg.Error:
            pass
        time.sleep(0.2)
    raise SystemExit(f"no row after {since} within {TIMEOUT_S} s")


def measure() -> dict[str, float | int]:
    config = private_config("sensorpipe-run-bench-", BASE_PORT)
    settings = load_settings({}, config)
    figures: dict[str, float | int] = {}
    began = time.monotonic()
    log = config.parent / "run.out"
    command = ["run", "--simulate", "10", "--rate", "500", "--no-view"]
    run = subprocess.Popen(
        [sys.executable, "-m", "sensorpipe", "--config", str(config), *command],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = _first_row_after(settings, datetime.min.replace(tzinfo=UTC), run, log)
        figures["cold_start_to_first_row_s"] = first - began
        time.sleep(10)
        stream = PidFile(settings.home / "run" / "stream.pid").running_pid()
        assert stream is not None
        killed_at, killed_wall = time.monotonic(), datetime.now(UTC)
        os.kill(stream, signal.SIGKILL)
        figures["recovery_after_stream_kill_s"] = _first_row_after(settings, killed_wall, run, log) - killed_at
        time.sleep(10)
        doctor_began = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "sensorpipe", "--config", str(config), "doctor", "--json"],
            capture_output=True,
            check=False,
        )
        figures["doctor_s"] = time.monotonic() - doctor_began
        stop_began = time.monotonic()
        run.send_signal(signal.SIGINT)
        run.wait(TIMEOUT_S)
        figures["stop_after_ctrl_c_s"] = time.monotonic() - stop_began
        figures["run_exit_code"] = run.returncode
        marks = watermarks(settings.kafka, settings.kafka.topic) or {}
        with psycopg.connect(settings.postgres.dsn()) as conn:
            row = conn.execute("select count(*) from sensor_data").fetchone()
        figures["kafka_records"] = sum(high - low for low, high in marks.values())
        figures["stored"] = int(row[0]) if row else 0
    finally:
        if run.poll() is None:
            run.kill()
        Stack(settings).down()
        shutil.rmtree(config.parent, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    figures = measure()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title="sensorpipe run: lifecycle")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, f"{value:.1f}" if isinstance(value, float) else f"{value:,}")
    Console().print(table)


if __name__ == "__main__":
    main()
