"""`sensorpipe simulate`: a fleet of simulated sensors publishing to MQTT, with a live line and a summary."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import typer
from rich.live import Live
from rich.text import Text

from sensorpipe.cli.console import console, err_console, fail, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.cli.options import setting_help
from sensorpipe.config.credentials import CredentialsError
from sensorpipe.config.logins import mqtt_login, signs_in_per_sensor
from sensorpipe.simulator.publisher import Job, Stats, simulate
from sensorpipe.simulator.readings import LEGACY_TOPIC, FleetSpec
from sensorpipe.stack import StackError
from sensorpipe.stack.mosquitto import add_sensor_logins

MAX_SENSOR_PROCESSES = 64
"""On a secure stack a sensor is one publisher process; beyond this many, gateways (`--batch`) are the way."""


class _LiveLine:
    """One line on stderr, redrawn about once a second: rates from the difference with the previous sum."""

    def __init__(self, live: Live, processes: int) -> None:
        self.live = live
        self.processes = processes
        self.last = Stats()
        self.last_at = time.monotonic()

    def __call__(self, stats: Stats) -> None:
        now = time.monotonic()
        seconds = max(now - self.last_at, 1e-6)
        per_s = (stats.sent - self.last.sent) / seconds
        readings_per_s = (stats.readings - self.last.readings) / seconds
        self.last, self.last_at = stats, now
        if stats.connected == self.processes:
            state = "[green]● connected[/]"
        elif stats.connected:
            state = f"[yellow]● {stats.connected}/{self.processes} connected[/]"
        else:
            state = "[red]● reconnecting[/]"
        self.live.update(
            Text.from_markup(
                f"{state}  {per_s:,.0f} msg/s ({readings_per_s:,.0f} readings/s)  sent {stats.sent:,}"
                f"  acked {stats.acked:,}  buffered {stats.buffered:,}  dropped {stats.dropped:,}"
            ),
            refresh=True,
        )


def _summary(stats: Stats, job: Job) -> None:
    sent = (
        f"sent {stats.sent:,} messages ({stats.readings:,} readings, {stats.malformed:,} malformed) "
        f"at QoS {job.qos} in {stats.elapsed_s:.1f} s"
    )
    if stats.lossless:
        ok(sent)
    else:
        console.print(f"[yellow]![/] {sent}")
    console.print(
        f"  acknowledged {stats.acked:,} ({stats.readings_acked:,} readings), dropped {stats.dropped:,}, "
        f"unacknowledged {stats.unacked:,}; {stats.reconnects:,} reconnect(s)"
    )
    rate = stats.as_json()
    console.print(f"  {rate['messages_per_s']:,.0f} messages/s, {rate['readings_per_s']:,.0f} readings/s")


def _loss(stats: Stats, job: Job) -> str:
    """What was lost and why, in one line."""
    causes = []
    if stats.dropped:
        causes.append(
            f"{stats.dropped:,} dropped ({stats.readings_dropped:,} readings) because the buffer"
            f" (--buffer {job.buffer:,}) was full while the broker was unreachable"
        )
    if stats.unacked:
        causes.append(
            f"{stats.unacked:,} ({stats.readings_unacked:,} readings) not acknowledged by the broker"
            f" within --drain-timeout {job.drain_timeout_s:g} s"
        )
    if stats.failed:
        causes.append(f"{stats.failed} publisher process(es) failed: see the lines above")
    return "lost messages: " + "; ".join(causes)


def simulate_command(
    ctx: typer.Context,
    sensors: Annotated[
        int, typer.Option("--sensors", "-n", help="Sensors in the fleet: sensor-001, sensor-002, ...")
    ] = 10,
    rate: Annotated[
        float, typer.Option("--rate", "-r", help="Readings per second in total; 0: as fast as the broker takes them.")
    ] = 10.0,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Stop after this many seconds.")] = None,
    count: Annotated[int | None, typer.Option("--count", help="Stop after this many readings.")] = None,
    batch: Annotated[
        int, typer.Option("--batch", "-b", help="Readings per message: a gateway's JSON array on sensors/gw-01/data.")
    ] = 1,
    qos: Annotated[int | None, typer.Option("--qos", help=setting_help("mqtt", "qos", "MQTT QoS 0, 1 or 2."))] = None,
    legacy: Annotated[
        bool, typer.Option("--legacy", help="The original publisher: mqtt.legacy_topic, no sensor_id in the payload.")
    ] = False,
    malformed_ratio: Annotated[
        float,
        typer.Option(
            "--malformed-ratio",
            help="Fraction of malformed messages, in turn: not JSON, wrong types, out of range, empty"
            " (and, with --batch, one bad element).",
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed and timestamps, same readings.")] = 0,
    buffer: Annotated[
        int,
        typer.Option(
            "--buffer", help="Messages held while the broker is unreachable; newer ones are dropped, counted."
        ),
    ] = 100_000,
    processes: Annotated[
        int, typer.Option("--processes", "-p", help="Publisher processes, splitting the sensors and the rate.")
    ] = 1,
    drain_timeout: Annotated[
        float, typer.Option("--drain-timeout", help="Seconds to wait at the end for outstanding acknowledgements.")
    ] = 10.0,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Publish realistic readings from a fleet of simulated sensors, as the data contract describes them.

    Temperatures and humidities follow a daily cycle with per-sensor climates and a little noise. The
    simulator never gives up: it reconnects with backoff while the broker is down and buffers meanwhile.
    Ctrl+C stops it: it waits for outstanding acknowledgements, then prints what was sent, acknowledged and
    dropped. The exit code is 0 only when nothing was lost.

    Examples:

    ```
    sensorpipe simulate --sensors 10 --rate 5            # until Ctrl+C
    sensorpipe simulate -n 100 --rate 1000 --count 10000 --qos 1
    sensorpipe simulate -n 500 --rate 50000 --batch 50 -p 2 -d 60
    sensorpipe simulate --legacy --rate 1 -d 30          # sensors/data
    sensorpipe simulate --rate 100 --malformed-ratio 0.05
    ```

    On a secure stack (`sensorpipe stack up --secure`) every simulated sensor (with `--batch`: every
    gateway, gw-01 ...) logs in as itself, with a login added as `sensorpipe stack sensor add` does, and
    may publish on its own topic only: one publisher process per sensor, and no `--legacy`.
    """
    settings = app_context(ctx).settings(mqtt={"qos": qos})
    secure = signs_in_per_sensor(settings)
    if secure and legacy:
        fail(
            f"--legacy publishes on {settings.mqtt.legacy_topic or LEGACY_TOPIC}, which names no sensor: on a secure"
            " stack no sensor may publish there. Drop --legacy"
        )
    if secure and batch == 1:
        if sensors > MAX_SENSOR_PROCESSES:
            fail(
                f"on a secure stack each sensor logs in as itself, one publisher process each: {sensors} sensors"
                f" are more than {MAX_SENSOR_PROCESSES} processes. Use --batch K: gateways (gw-01 ...) log in"
                " instead, one process each"
            )
        processes = sensors  # each sensor logs in as itself: one publisher (one connection) per sensor
    try:
        job = Job(
            fleet=FleetSpec(
                sensors,
                seed,
                batch,
                legacy,
                malformed_ratio,
                topic=settings.mqtt.topic,
                legacy_topic=settings.mqtt.legacy_topic or LEGACY_TOPIC,
            ),
            rate=rate,
            count=count,
            duration_s=duration,
            qos=settings.mqtt.qos,
            buffer=buffer,
            processes=processes,
            drain_timeout_s=drain_timeout,
            client_id=f"sensorpipe-sim-{uuid.uuid4().hex[:8]}",
        )
    except ValueError as e:
        fail(str(e))
    logins = [settings.mqtt] * job.processes if settings.mqtt.username else None  # v5: ACL refusals are seen
    if secure:
        senders = [job.sender_of(i) for i in range(job.processes)]
        try:
            credentials = add_sensor_logins(settings, senders)
        except (CredentialsError, StackError) as e:
            fail(str(e))
        logins = [mqtt_login(settings, sender, credentials) for sender in senders]
    with Live(console=err_console, auto_refresh=False, transient=True) as live:
        stats = simulate(
            job,
            settings.mqtt,
            on_progress=_LiveLine(live, job.processes),
            on_event=lambda line: live.console.print(f"{time.strftime('%H:%M:%S')} {line}", markup=False),
            logins=logins,
        )
    if json_:
        print_json({**stats.as_json(), "qos": job.qos, "processes": job.processes, "lossless": stats.lossless})
    else:
        _summary(stats, job)
    if not stats.lossless:
        fail(_loss(stats, job))
