"""`sensorpipe run`: the whole pipeline in one command, supervised, with a live view."""

from __future__ import annotations

import functools
import os
import signal
import time
from dataclasses import replace
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sensorpipe.cli.console import console, err_console, fail, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.config import Settings
from sensorpipe.monitoring.top import Snapshot, between, known, stage_totals, take_snapshot
from sensorpipe.monitoring.top_view import render
from sensorpipe.pipeline.launch import (
    BRIDGE,
    SIMULATOR,
    STREAM,
    LaunchError,
    RunOptions,
    child_specs,
    prepare,
    stream_backlog,
)
from sensorpipe.pipeline.sequence import Drain, RunSequence
from sensorpipe.pipeline.supervisor import ChildState, Event, Supervisor, describe_exit
from sensorpipe.stack.process import PidFile

TICK_S = 1.0
DRAIN_TIMEOUT_S = 120.0
"""How long the stream job may take to store the last forwarded readings before it is stopped anyway."""
MARKS = {"crashed": ("✗", "red"), "gave_up": ("✗", "red"), "killed": ("!", "yellow")}
"""How an event line starts, by kind of event; others start with •."""
PROGRESS_EVERY_S = 10.0
"""With --no-view: one progress line this often."""


class StopRequests:
    """Ctrl+C, SIGTERM or SIGHUP: the first asks for a clean stop, the second kills (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.count = 0
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt

    @property
    def requested(self) -> bool:
        return self.count > 0


class Output:
    """Events as one line each (stderr with --json), and the live view or a periodic progress line."""

    def __init__(self, settings: Settings, supervisor: Supervisor, *, view: bool, json_: bool) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.json = json_
        self.lines = err_console if json_ else console
        self.live = Live(console=console, auto_refresh=False, transient=False) if view and not json_ else None
        self.previous: Snapshot | None = None
        self.last_known: dict[str, Any] = {}
        """The bridge's and the stream job's last figures, shown once `run` stopped them."""
        self.totals: dict[str, int | None] = {}
        """Each stage's counter as last seen (since its process last started): the bridge stops before the job."""
        self.last_progress = time.monotonic()
        self.status = ""

    def __enter__(self) -> Output:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def events(self, events: list[Event] | Event | None) -> None:
        for event in events if isinstance(events, list) else [events] if events else []:
            mark = {"crashed": ("✗", "red"), "gave_up": ("✗", "red"), "killed": ("!", "yellow")}.get(
                event.kind, ("•", "")
            )
            stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
            # Plain text: a log line quoted in the message may hold [brackets] rich would take for markup.
            self.lines.print(Text.assemble(f"{stamp} ", mark, f" {event.message}"))

    def say(self, line: str) -> None:
        self.status = line
        self.lines.print(f"{time.strftime('%H:%M:%S')} • {line}")

    def refresh(self, *, last: bool = False) -> None:
        """Take a snapshot and redraw, or print a progress line now and then (and the `last` one) without the view."""
        current = self._snapshot()
        self.totals |= {stage: n for stage, n in stage_totals(current).items() if n is not None}
        if self.live is not None:
            panel = render(between(self.previous or current, current), title="sensorpipe run")
            self.live.update(Group(panel, self._children()), refresh=True)
        elif not self.json and (last or time.monotonic() - self.last_progress >= PROGRESS_EVERY_S):
            self.last_progress = time.monotonic()
            self.lines.print(f"{time.strftime('%H:%M:%S')} • {progress_line(current)}")
        self.previous = current

    def _snapshot(self) -> Snapshot:
        """A snapshot in which a process `run` stopped keeps its last figures instead of showing as down."""
        current = take_snapshot(self.settings)
        kept: dict[str, Any] = {}
        for name in (BRIDGE, STREAM):
            figures = getattr(current, name)
            if known(figures):
                self.last_known[name] = figures
            elif self.supervisor.children[name].state is ChildState.STOPPED and name in self.last_known:
                kept[name] = self.last_known[name]
        return replace(current, **kept)

    def _children(self) -> RenderableType:
        table = Table(title="processes", title_justify="left", expand=False)
        for column in ("process", "state", "pid", "up", "restarts", "last exit", "log"):
            table.add_column(column)
        now = self.supervisor.clock()
        for child in self.supervisor.children.values():
            state = child.state.value
            if child.state is ChildState.WAITING:
                state = f"restarting in {max(child.restart_at - now, 0):.0f} s"
            colour = {ChildState.RUNNING: "green", ChildState.FINISHED: "green"}.get(child.state, "red")
            running = child.state is ChildState.RUNNING
            table.add_row(
                child.name,
                f"[{colour}]{state}[/]",
                str(child.pid or "") if running else "",
                f"{now - child.started_at:.0f} s" if running else "",
                str(child.restarts),
                describe_exit(child.last_exit) if child.last_exit is not None else "",
                str(child.log_file),
            )
        return Group(table, self.status) if self.status else table


def progress_line(snapshot: Snapshot) -> str:
    """`received 5,000 · forwarded 5,000 · stored 4,990 · lake 4,990 · lag 0`, from what answered."""
    totals = stage_totals(snapshot)
    names = {
        "mqtt_received": "received",
        "kafka_forwarded": "forwarded",
        "database_rows": "stored",
        "lake_rows": "lake",
    }
    parts = [f"{label} {totals[key]:,}" for key, label in names.items() if totals[key] is not None]
    stream = known(snapshot.stream)
    if stream is not None and stream.kafka_lag is not None:
        parts.append(f"lag {stream.kafka_lag:,}")
    return " · ".join(parts) or "waiting for the bridge's and the stream job's metrics"


def run(
    ctx: typer.Context,
    simulate: Annotated[
        int | None,
        typer.Option("--simulate", min=1, help="Also run N simulated sensors (sensor-001 ...) publishing to MQTT."),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", min=0.0, help="Simulated readings per second, in total (with --simulate).")
    ] = 100.0,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            min=1.0,
            help="Simulate this many seconds (or, without --simulate, run this long), then stop cleanly"
            " once everything forwarded is stored. Default: until Ctrl+C.",
        ),
    ] = None,
    no_view: Annotated[
        bool, typer.Option("--no-view", help="No live view: one line per event and a progress line every 10 s.")
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="No view; events on stderr, a JSON summary on stdout at the end.")
    ] = False,
) -> None:
    """Run the whole pipeline, supervised: stack, bridge, stream job (and simulated sensors), one command.

    Starts the local stack (services configured at another host are used, not started), migrates the
    database, creates the topics and the bucket, then runs as child processes the stream job, the bridge
    and, with `--simulate`, the simulator, each in its own process group with its log under
    `<home>/logs/`. A child that crashes is restarted after a growing, jittered delay (1 s doubling to
    30 s) and the restart is reported with the last lines of its log; one that crashes 5 times in a row
    within a minute of starting is given up on and `run` stops with the cause.

    Ctrl+C (or SIGTERM) stops in the order that loses nothing: the simulator, then the bridge (it
    acknowledges to MQTT only what Kafka confirmed), then the stream job once it stored everything the
    bridge forwarded (at most 2 minutes; what is left stays in Kafka for the next start). A second
    Ctrl+C kills what is still running. The stack stays up (`sensorpipe stack down`).

    Examples:

    - `sensorpipe run --simulate 10 --rate 500`: a demo; watch it, Ctrl+C to stop
    - `sensorpipe run --simulate 10 --rate 500 --duration 30 --no-view`: 30 s of readings, then stop
    - `sensorpipe run`: bridge and stream job for real sensors on `mqtt.topic`
    """
    app = app_context(ctx)
    settings = app.settings()
    options = RunOptions(sensors=simulate, rate=rate, duration_s=duration)
    lock = PidFile(settings.home / "run" / "run.pid")
    other = lock.running_pid()
    if other is not None:
        fail(
            f"another `sensorpipe run` (pid {other}) supervises the pipeline of {settings.home}: stop it first"
            f" (Ctrl+C in its terminal, or `kill -TERM {other}`)"
        )
    stops = StopRequests()
    lock.write(os.getpid())
    try:
        _prepare(settings, json_)
        supervisor = Supervisor(
            child_specs(app.root_args, options), settings.home, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        with Output(settings, supervisor, view=not no_view, json_=json_) as out:
            summary = _supervise(settings, supervisor, options, stops, out)
    finally:
        lock.remove()
    if json_:
        print_json(summary)
    elif summary["exit_code"] == 0:
        ok(f"pipeline stopped ({summary['stopped_because']}); the stack is still up: `sensorpipe stack down`")
    else:
        left = "; what was not stored yet stays in Kafka for the next start" if summary["drained"] is False else ""
        err_console.print(f"[red]✗[/] pipeline stopped ({summary['stopped_because']}){left}")
    raise typer.Exit(summary["exit_code"])


def _prepare(settings: Settings, json_: bool) -> None:
    lines = err_console if json_ else console
    try:
        with err_console.status("setting up ...") as spinner:

            def report(what: str, line: str) -> None:
                spinner.update(f"{what}: {line}")
                lines.print(f"  {what}: {line}")

            prepare(settings, report)
    except LaunchError as e:
        fail(str(e))


def _supervise(
    settings: Settings, supervisor: Supervisor, options: RunOptions, stops: StopRequests, out: Output
) -> dict[str, Any]:
    """Start, watch until asked to stop (or done, or a child was given up on), then stop in order."""
    why = "interrupted"
    sequence = RunSequence.for_settings(settings, supervisor, report=out.events)
    try:
        sequence.start(cancelled=lambda: stops.requested)  # Ctrl+C during the set-up: start nothing
        why = _watch(sequence, options, stops, out)
        drained = _stop(settings, sequence, out, drain=why != "gave up")
    except KeyboardInterrupt:
        out.events(supervisor.kill_all())
        why, drained = "killed by a second Ctrl+C", False
    except BaseException:
        supervisor.kill_all()  # whatever went wrong here, no child outlives `run`
        raise
    children = {
        child.name: {
            "state": child.state.value,
            "restarts": child.restarts,
            "last_exit": child.last_exit,
            "log": str(child.log_file),
        }
        for child in supervisor.children.values()
    }
    code = 0 if why in {"interrupted", "duration reached"} and drained is not False else 1
    return {"stopped_because": why, "drained": drained, "children": children, "totals": out.totals, "exit_code": code}


def _watch(sequence: RunSequence, options: RunOptions, stops: StopRequests, out: Output) -> str:
    """Tick until a stop is asked for, the run's time is up, or a child was given up on; says which.

    The simulator starts once the broker confirmed the bridge's subscription.
    """
    began = time.monotonic()
    supervisor = sequence.supervisor

    def turn() -> str | None:
        alive = sequence.poll()
        if stops.requested:
            return "interrupted"
        if not alive:
            return "gave up"
        if options.duration_s is not None:
            simulator = supervisor.children.get(SIMULATOR)
            if simulator is not None and simulator.state is ChildState.FINISHED:
                return "duration reached"
            if simulator is None and time.monotonic() - began >= options.duration_s:
                return "duration reached"
        out.refresh()
        return None

    if SIMULATOR in supervisor.children:
        why = sequence.wait_subscribed(turn, tick_s=TICK_S)
        if why is not None:
            return why
        out.events(supervisor.start(SIMULATOR))
    return sequence.watch(turn, tick_s=TICK_S)


def _stop(settings: Settings, sequence: RunSequence, out: Output, *, drain: bool) -> bool | None:
    """In STOP_ORDER, the stream job once it stored what was forwarded: whether it did (None: not tried)."""

    def stopping(name: str) -> None:
        out.status = f"stopping {name} ..."
        out.refresh()

    drained = sequence.stop(
        drain=functools.partial(_drain, settings, sequence, out) if drain else None, stopping=stopping
    )
    out.status = ""
    out.refresh(last=True)
    return drained


def _drain(settings: Settings, sequence: RunSequence, out: Output) -> bool:
    """Wait until the stream job committed every record now on the topic; a crash meanwhile is restarted."""

    def waiting(left: int | None) -> bool:
        if left is None:
            out.say("stream job: cannot read its checkpoint or Kafka's offsets, so cannot wait for it to catch up")
            return False
        out.status = f"stream job: storing the last {left:,} record(s) before it stops (Ctrl+C again: stop now)"
        out.refresh()
        return True

    drained = sequence.drain(
        functools.partial(stream_backlog, settings), waiting, timeout_s=DRAIN_TIMEOUT_S, tick_s=TICK_S
    )
    if drained.outcome is Drain.TIMED_OUT:
        out.say(
            f"stream job: {drained.left or 0:,} record(s) not stored within {DRAIN_TIMEOUT_S:.0f} s; they stay in Kafka"
            " and the next start stores them"
        )
    if drained.outcome is not Drain.STORED:
        return False
    out.say("stream job: everything forwarded is stored")
    return True
