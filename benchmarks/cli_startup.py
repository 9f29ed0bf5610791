"""How long each `sensorpipe` command takes to start: the price of every CLI call and of every child
(bridge, stream job, simulator) that `sensorpipe run` starts or restarts.

Times `python -m sensorpipe <command> --help` (imports, settings, argument parsing; nothing runs),
a few times each, and prints the median per command. Needs no stack:

    .venv/bin/python benchmarks/cli_startup.py [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from sensorpipe.cli import COMMANDS


def median_s(command: list[str], repeat: int) -> float:
    """Median wall time of `command` run to completion `repeat` times."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per command; the median is reported")
    parser.add_argument("--json", action="store_true", help="one JSON object: command -> median seconds")
    options = parser.parse_args()
    medians = {"(python alone)": median_s([sys.executable, "-c", "pass"], options.repeat)}
    for name in ["--help", *COMMANDS]:
        args = [name] if name == "--help" else [name, "--help"]
        medians[" ".join(args)] = median_s([sys.executable, "-m", "sensorpipe", *args], options.repeat)
    if options.json:
        print(json.dumps({name: round(seconds, 3) for name, seconds in medians.items()}))
        return
    for name, seconds in medians.items():
        print(f"{name:<24} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
