"""How `sensorpipe top` (and later `sensorpipe run`) shows a `Frame`: a rich panel, or the same facts as JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any, TypeVar

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sensorpipe.monitoring.top import (
    READINGS_QUERY,
    STAGES,
    BridgeFigures,
    DatabaseFigures,
    Frame,
    StreamFigures,
    Unavailable,
    dead_letter_total,
    known,
    shown_sensors,
    silent_sensors,
)

UNKNOWN = "-"
"""Shown for a figure no source gave (a rate before the second snapshot, a source that is unavailable)."""

_T = TypeVar("_T")


def render(
    frame: Frame, sensors: int = 10, silent_after_s: float = 600, title: str = "sensorpipe top"
) -> RenderableType:
    """The panel: rates per stage, lag, dead letters, each source's health, and the latest reading per sensor.

    Sensors whose latest reading is older than `silent_after_s` are red.
    """
    taken = f"{frame.snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC"
    over = f"rates over {frame.interval_s:.1f} s" if frame.interval_s > 0 else "rates from the next refresh on"
    parts: list[RenderableType] = [_stages(frame), Text(), _status(frame, silent_after_s)]
    database = known(frame.snapshot.database)
    if database and database.latest:
        parts += [Text(), _sensors(database, sensors, silent_after_s)]
    return Panel(Group(*parts), title=f"{title} · {taken}", title_align="left", subtitle=over, subtitle_align="right")


def _stages(frame: Frame) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("stage")
    table.add_column("per second", justify="right")
    table.add_column("total", justify="right")
    for key, label in STAGES:
        table.add_row(label, _number(frame.rates[key], ",.1f"), _number(frame.totals[key], ","))
    return table


def _status(frame: Frame, silent_after_s: float) -> Table:
    snapshot = frame.snapshot
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    stream = known(snapshot.stream)
    lag = UNKNOWN if stream is None or stream.kafka_lag is None else f"{stream.kafka_lag:,} offsets"
    grid.add_row("lag", Text(f"{lag} behind Kafka ({READINGS_QUERY} query)"))
    grid.add_row("dead letters", Text(_dead_letters_line(frame)))
    grid.add_row("bridge", _source_line(snapshot.bridge, lambda f: _bridge_line(f, frame)))
    grid.add_row("stream", _source_line(snapshot.stream, lambda f: _stream_line(f, frame)))
    grid.add_row("database", _source_line(snapshot.database, lambda f: _database_line(f, silent_after_s)))
    return grid


def _source_line(source: _T | Unavailable, line: Callable[[_T], str]) -> Text:
    if isinstance(source, Unavailable):
        return Text(f"✗ unavailable: {source.reason}", style="red")
    return Text(line(source))


def _dead_letters_line(frame: Frame) -> str:
    snapshot = frame.snapshot
    total = dead_letter_total(snapshot)
    parts = [_number(total, ","), f"{_number(frame.dead_letters_per_s, ',.1f')}/s"]
    bridge, stream, database = known(snapshot.bridge), known(snapshot.stream), known(snapshot.database)
    if bridge:
        parts.append(f"bridge {bridge.dead_letters:,}{_reasons(bridge.dead_lettered)}")
    if stream:
        parts.append(f"stream {stream.dead_letters:,}{_reasons(stream.rejected)}")
    if database:
        parts.append(f"{database.rejects_last_hour:,} in sensor_rejects in the last hour")
    return " · ".join(parts)


def _reasons(counts: dict[str, int]) -> str:
    return f" ({', '.join(f'{reason} {n:,}' for reason, n in counts.items())})" if counts else ""


def _bridge_line(bridge: BridgeFigures, frame: Frame) -> str:
    return " · ".join(
        [
            "MQTT connected" if bridge.mqtt_connected else "MQTT disconnected",
            "Kafka reachable" if bridge.kafka_reachable else "Kafka unreachable",
            f"{bridge.in_flight:,} in flight",
            f"{bridge.errors:,} errors recovered",
            f"forward {_duration(frame.forward_latency_s)}",
        ]
    )


def _stream_line(stream: StreamFigures, frame: Frame) -> str:
    queries = ", ".join(f"{name} {state}" for name, state in sorted(stream.queries.items())) or "no query yet"
    return f"{queries} · batch {_duration(frame.batch_duration_s)} · end to end {_duration(frame.end_to_end_s)}"


def _database_line(database: DatabaseFigures, silent_after_s: float) -> str:
    silent = silent_sensors(database, silent_after_s)
    return f"{len(database.latest):,} sensors with readings, {silent:,} silent for {_age(silent_after_s)} or more"


def _sensors(database: DatabaseFigures, limit: int, silent_after_s: float) -> Table:
    shown = shown_sensors(database, limit)
    caption = (
        f"{len(shown)} of {len(database.latest)} sensors, stalest first" if len(shown) < len(database.latest) else None
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, caption=caption, caption_justify="left")
    table.add_column("sensor")
    table.add_column("reading at (UTC)")
    table.add_column("temperature", justify="right")
    table.add_column("humidity", justify="right")
    table.add_column("age", justify="right")
    for reading in shown:
        where = ", ".join(part for part in (reading.name, reading.location) if part)
        sensor = Text(reading.sensor_id)
        if where:
            sensor.append(f" {where}", style="dim")
        table.add_row(
            sensor,
            f"{reading.time.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            f"{_number(reading.temperature, '.1f')} °C",
            f"{_number(reading.humidity, '.1f')} %",
            _age(reading.age_s),
            style="red" if reading.age_s >= silent_after_s else None,
        )
    return table


def _number(value: float | None, spec: str) -> str:
    return UNKNOWN if value is None else format(value, spec)


def _duration(seconds: float | None) -> str:
    """A mean over the last interval: milliseconds below a second; UNKNOWN when nothing was observed."""
    if seconds is None:
        return UNKNOWN
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _age(seconds: float) -> str:
    """Short and readable: 0.4 s, 12 s, 3 min, 5 h, 2 d."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit}"
    return f"{seconds:.0f} s"


def frame_json(frame: Frame, sensors: int = 10, silent_after_s: float = 600) -> dict[str, Any]:
    """The facts of `render(frame, sensors, silent_after_s)` for scripts; null where a source is unavailable."""
    snapshot = frame.snapshot
    bridge, stream, database = known(snapshot.bridge), known(snapshot.stream), known(snapshot.database)
    return {
        "taken_at": snapshot.taken_at.isoformat(),
        "interval_s": round(frame.interval_s, 3),
        "stages": {key: {"per_s": frame.rates[key], "total": frame.totals[key]} for key, _ in STAGES},
        "kafka_lag": stream.kafka_lag if stream else None,
        "dead_letters": {
            "total": dead_letter_total(snapshot),
            "per_s": frame.dead_letters_per_s,
            "bridge": bridge.dead_lettered if bridge else None,
            "stream": stream.rejected if stream else None,
            "rejects_last_hour": database.rejects_last_hour if database else None,
        },
        "bridge": {
            "mqtt_connected": bridge.mqtt_connected,
            "kafka_reachable": bridge.kafka_reachable,
            "in_flight": bridge.in_flight,
            "errors": bridge.errors,
            "forward_latency_s": frame.forward_latency_s,
        }
        if bridge
        else None,
        "stream": {
            "queries": stream.queries,
            "batch_duration_s": frame.batch_duration_s,
            "end_to_end_s": frame.end_to_end_s,
        }
        if stream
        else None,
        "sensors": {
            "with_readings": len(database.latest),
            "silent": silent_sensors(database, silent_after_s),
            "shown": [
                {
                    "sensor_id": r.sensor_id,
                    "name": r.name,
                    "location": r.location,
                    "time": r.time.isoformat(),
                    "temperature": r.temperature,
                    "humidity": r.humidity,
                    "age_s": round(r.age_s, 3),
                }
                for r in shown_sensors(database, sensors)
            ],
        }
        if database
        else None,
        "unavailable": {
            name: source.reason
            for name, source in (
                ("bridge", snapshot.bridge),
                ("stream", snapshot.stream),
                ("database", snapshot.database),
            )
            if isinstance(source, Unavailable)
        },
    }


__all__ = ["frame_json", "render"]
