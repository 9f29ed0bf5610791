"""`sensorpipe bench`: how fast the pipeline is on this machine, and where the time goes."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from sensorpipe.cli.console import console, err_console, fail, ok


def bench(
    rate: Annotated[
        float,
        typer.Option(
            "--rate",
            min=1.0,
            help="Readings per second offered in both modes; with --max, where the search starts (batch K: 10x).",
        ),
    ] = 2000.0,
    search: Annotated[
        bool,
        typer.Option("--max", help="Find the highest sustainable rate of each mode by stepping the load."),
    ] = False,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            min=8.0,
            help="Seconds of load per step, at least: steps last 10 stream triggers more than their warm-up,"
            " and longer while the stream job's micro-batches run slower than its trigger.",
        ),
    ] = 30.0,
    sensors: Annotated[int, typer.Option("--sensors", min=1, help="Simulated sensors.")] = 100,
    batch: Annotated[
        int, typer.Option("--batch", min=2, help="Readings per message in the gateway mode (batch K).")
    ] = 50,
    ceiling_duration: Annotated[
        float, typer.Option("--ceiling-duration", min=1.0, help="Seconds per single-stage ceiling.")
    ] = 10.0,
    warmup: Annotated[
        float,
        typer.Option(
            "--warmup",
            min=0.0,
            help="Seconds of load after the first stored row, before the modes are measured (JIT, connections).",
        ),
    ] = 10.0,
    base_port: Annotated[
        int,
        typer.Option(
            "--base-port",
            min=1024,
            max=55_000,
            help="The bench's own stack listens on this port + 1 … + 14 (S3 also + 10,010 …) and + 310, + 311;"
            " keep + 10,014 below the kernel's ephemeral range (Linux: 32768), or outgoing connections take them.",
        ),
    ] = 19_000,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the bench's stack up and keep its home and logs.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout; progress on stderr.")] = False,
    plot_file: Annotated[
        Path | None, typer.Option("--plot", help="Also draw rate and p99 latency over time into this PNG.")
    ] = None,
) -> None:
    """Measure the whole pipeline under a controlled load, next to each stage's ceiling on this machine.

    The bench runs on a stack of its own (a fresh home on ports from `--base-port`), so the cold start is
    real and your stack and data are not touched. It measures, for one reading per message (batch 1) and
    for gateway messages of `--batch` readings:

    - cold start → first row in `sensor_data`;
    - readings/s landing in the database and in the lake; lost and duplicated readings, counted in both;
    - publish → stored latency p50/p95/p99 (from each reading's own timestamp);
    - CPU and peak resident memory of every component;
    - with `--max`, the highest sustainable rate: the database landed ≥ 98 % of it over the step and less
      than 2 s of readings were left at the step's end; every verdict is printed beside that landing rate;
    - the lake's size when each mode starts, and the stream job's CPU seconds per 10,000 readings stored;

    then each stage alone (MQTT QoS 1 publish → subscribe, Kafka produce and consume, PostgreSQL COPY,
    Parquet write) and judges everything against the bench's targets (docs/bench.md).

    Examples:

    - `sensorpipe bench`: 2,000 readings/s for 30 s in each mode (about 4 minutes)
    - `sensorpipe bench --max --duration 20 --plot bench.png`: find the limits (10 to 20 minutes)
    - `sensorpipe bench --json > bench.json`: for scripts
    """
    # Imported here: matplotlib and the bench's modules would slow every other command's start.
    from sensorpipe.bench.plot import plot
    from sensorpipe.bench.report import print_report, to_json
    from sensorpipe.bench.runner import Bench, BenchOptions

    options = BenchOptions(
        rate=rate,
        search=search,
        duration_s=duration,
        sensors=sensors,
        batch=batch,
        ceiling_s=ceiling_duration,
        warmup_s=warmup,
        base_port=base_port,
        keep=keep,
    )
    with err_console.status("starting ...") as spinner:

        def say(line: str) -> None:
            err_console.print(f"{time.strftime('%H:%M:%S')} • {line}", markup=False)

        # SIGTERM ends the bench as Ctrl+C does: through its clean-up, which stops the stack it started.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            report = Bench(options, say=say, status=spinner.update).run()
        except KeyboardInterrupt:
            fail("interrupted: the bench's processes and stack were stopped, no report")
    if json_:
        sys.stdout.write(to_json(report) + "\n")
    else:
        print_report(report, console)
    if plot_file is not None:
        written = plot(report, plot_file)
        if not json_:
            ok(f"plot written to {written}")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
