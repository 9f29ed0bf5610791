"""`sensorpipe top`: a live terminal view of the pipeline, for when Grafana is not there."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Annotated

import typer
from rich.live import Live

from sensorpipe.cli.console import console, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.config import Settings
from sensorpipe.monitoring.top import between, take_snapshot
from sensorpipe.monitoring.top_view import frame_json, render


def top(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between refreshes; rates are over this interval.")
    ] = 1.0,
    once: Annotated[
        bool,
        typer.Option("--once", help="Take two snapshots `--interval` apart, print one frame and exit (for scripts)."),
    ] = False,
    json_: Annotated[
        bool,
        typer.Option("--json", help="Like `--once`, but print the frame's facts as JSON on stdout, nothing else."),
    ] = False,
    sensors: Annotated[
        int, typer.Option("--sensors", min=1, help="Sensors listed, stalest first, so a silent one is never hidden.")
    ] = 10,
) -> None:
    """Watch the pipeline live: rates per stage, Kafka lag, dead letters, and the latest reading per sensor.

    Reads the bridge's metrics (`bridge.metrics_host`:`bridge.metrics_port`, default 127.0.0.1:9310),
    the stream job's (`stream.metrics_port`, 9311), and PostgreSQL as the read-only `postgres.reader_user`;
    it changes nothing. A source that does not answer shows as unavailable with the reason and fix, and
    the rest of the view still works. Ctrl+C exits.

    What it shows:

    - **stages**: readings per second and in total, as MQTT received, Kafka forwarded (bridge), stream
      read, database rows and lake rows (stream job); totals count since each process started. The
      stream job counts once per micro-batch, so its rates come in steps when a batch outlasts `--interval`
    - **lag**: Kafka records the stream job's `readings` query has not read yet
    - **dead letters**: bridge dead-lettered plus stream rejected, by reason, and `sensor_rejects` rows
      of the last hour
    - **bridge / stream / database**: connections, in flight, mean forward latency, query states, mean
      batch duration and end-to-end latency over the interval
    - **sensors**: each one's latest reading and its age, stalest first; red once silent for
      `monitoring.silent_sensor_minutes`

    Examples:

    - `sensorpipe top`
    - `sensorpipe top --interval 5 --sensors 30`
    - `sensorpipe top --json | jq '.stages.database_rows.per_s, .kafka_lag'`
    """
    settings = app_context(ctx).settings()
    silent_after_s = settings.monitoring.silent_sensor_minutes * 60.0
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not (once or json_):
            _watch(settings, interval, sensors, silent_after_s)
            return
        before = take_snapshot(settings)
        time.sleep(interval)
        frame = between(before, take_snapshot(settings))
    except KeyboardInterrupt:
        return
    if json_:
        print_json(frame_json(frame, sensors, silent_after_s))
    else:
        console.print(render(frame, sensors, silent_after_s), soft_wrap=False)


def _watch(settings: Settings, interval: float, sensors: int, silent_after_s: float) -> None:
    """Refresh every `interval` seconds until Ctrl+C; the first frame shows at once, its rates one interval later."""
    previous = take_snapshot(settings)
    first = render(between(previous, previous), sensors, silent_after_s)
    with Live(first, console=console, auto_refresh=False) as live:
        while True:
            time.sleep(max(interval - (time.monotonic() - previous.clock_s), 0.0))
            current = take_snapshot(settings)
            live.update(render(between(previous, current), sensors, silent_after_s), refresh=True)
            previous = current


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM ends the view the way Ctrl+C does: cleanly, exit 0."""
    raise KeyboardInterrupt
