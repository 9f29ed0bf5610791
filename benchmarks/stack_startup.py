"""Stack start-up times (cold: first start with formatting; warm: restart on existing data) and idle memory.

Runs `sensorpipe stack up` as a user would, in a fresh home on ports of its own (23000+), so a stack
on the default ports keeps running. Prints a table, or JSON with --json.

    .venv/bin/python benchmarks/stack_startup.py [--runs 3] [--idle 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sensorpipe.bench.home import private_config
from sensorpipe.config import load_settings
from sensorpipe.stack import Stack
from sensorpipe.stack.process import group_rss_bytes

BASE_PORT = 23000


def _cli(config: Path, *args: str) -> float:
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sensorpipe", "--config", str(config), "stack", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - began
    if result.returncode != 0:
        raise SystemExit(f"stack {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def measure(runs: int, idle_s: float) -> dict[str, object]:
    cold, warm = [], []
    memory: dict[str, int] = {}
    for run in range(runs):
        config = private_config("sensorpipe-bench-", BASE_PORT)
        home = config.parent
        try:
            cold.append(_cli(config, "up"))
            _cli(config, "down")
            warm.append(_cli(config, "up"))
            if run == runs - 1:
                time.sleep(idle_s)
                for state in Stack(load_settings(config_file=config)).status():
                    if state.pid:
                        memory[state.name] = group_rss_bytes(state.pid)
        finally:
            _cli(config, "down", "--purge")
            shutil.rmtree(home, ignore_errors=True)
    return {
        "runs": runs,
        "cold_up_s": {"median": statistics.median(cold), "min": min(cold), "max": max(cold)},
        "warm_up_s": {"median": statistics.median(warm), "min": min(warm), "max": max(warm)},
        "idle_rss_mib": {name: round(value / 2**20, 1) for name, value in memory.items()},
        "idle_rss_total_mib": round(sum(memory.values()) / 2**20, 1),
        "idle_after_s": idle_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds to let the stack settle before memory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.runs, args.idle)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"stack start-up over {args.runs} run(s)")
    for column in ("figure", "value"):
        table.add_column(column)
    for kind in ("cold_up_s", "warm_up_s"):
        stats = figures[kind]
        assert isinstance(stats, dict)
        table.add_row(kind, f"median {stats['median']:.2f} s (min {stats['min']:.2f}, max {stats['max']:.2f})")
    rss = figures["idle_rss_mib"]
    assert isinstance(rss, dict)
    for name, mib in rss.items():
        table.add_row(f"idle RSS {name}", f"{mib} MiB")
    table.add_row("idle RSS total", f"{figures['idle_rss_total_mib']} MiB")
    Console().print(table)


if __name__ == "__main__":
    main()
