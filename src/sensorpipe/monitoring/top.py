"""`sensorpipe top`: the pipeline at a glance, without Grafana: what it reads, and the rates between two reads.

`take_snapshot` reads the bridge's and the stream job's metrics endpoints and the database (a source that
does not answer becomes an `Unavailable` with the reason and fix, never an exception); `between` turns two
snapshots into a `Frame` with rates. `monitoring/top_view.py` draws a frame, so that `sensorpipe run` can too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import psycopg

from sensorpipe.config import Settings
from sensorpipe.monitoring.scrape import Scrape, ScrapeError, scrape
from sensorpipe.storage.errors import StorageError, connected
from sensorpipe.storage.queries import LATEST_READINGS

READINGS_QUERY = "readings"
"""The stream job's query from Kafka into the database and the lake: its lag is the pipeline's lag."""

REJECTS_LAST_HOUR = "select count(*) from sensor_rejects where received_at > now() - interval '1 hour'"

STAGES = (
    ("mqtt_received", "MQTT received"),
    ("kafka_forwarded", "Kafka forwarded"),
    ("stream_read", "stream read"),
    ("database_rows", "database rows"),
    ("lake_rows", "lake rows"),
)
"""Each stage's key (in `--json`) and label, in the order a reading passes them."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class Unavailable:
    """A source that did not answer: `reason` names the cause and the fix."""

    reason: str


@dataclass(frozen=True)
class Observed:
    """A histogram's sum and count since its process started: a mean over any window needs two of them."""

    sum_s: float = 0.0
    count: int = 0

    def mean_since(self, before: Observed) -> float | None:
        """Mean of the observations made since `before`; None without any (or after a restart)."""
        n = self.count - before.count
        return (self.sum_s - before.sum_s) / n if n > 0 else None


@dataclass(frozen=True)
class BridgeFigures:
    """Counters since the bridge started, and its connections now."""

    received: int
    forwarded: int
    dead_lettered: dict[str, int]
    errors: int
    in_flight: int
    mqtt_connected: bool
    kafka_reachable: bool
    forward_latency: Observed

    @property
    def dead_letters(self) -> int:
        return sum(self.dead_lettered.values())


@dataclass(frozen=True)
class StreamFigures:
    """Counters since the stream job started, the readings query's Kafka lag, and each query's state."""

    read: int
    sink_rows: dict[str, int]
    rejected: dict[str, int]
    kafka_lag: int | None
    queries: dict[str, str]
    batch_duration: Observed
    end_to_end: Observed
    end_to_end_buckets: tuple[tuple[float, float], ...] = ()
    """The end-to-end histogram as (upper bound in s, readings at or below it), ascending: for percentiles."""

    @property
    def dead_letters(self) -> int:
        return sum(self.rejected.values())


@dataclass(frozen=True)
class LatestReading:
    """One row of `LATEST_READINGS`."""

    sensor_id: str
    name: str | None
    location: str | None
    time: datetime
    temperature: float | None
    humidity: float | None
    age_s: float


@dataclass(frozen=True)
class DatabaseFigures:
    latest: tuple[LatestReading, ...]
    rejects_last_hour: int


@dataclass(frozen=True)
class Snapshot:
    """Every source at one moment; `clock_s` is monotonic, for rates, `taken_at` is for people."""

    taken_at: datetime
    clock_s: float
    bridge: BridgeFigures | Unavailable
    stream: StreamFigures | Unavailable
    database: DatabaseFigures | Unavailable


@dataclass(frozen=True)
class Frame:
    """What one refresh shows: the newer snapshot, with rates and means over the time since the older one.

    Rates and means are None where a source was unavailable in either snapshot, or no time passed.
    """

    snapshot: Snapshot
    interval_s: float
    totals: dict[str, int | None]
    rates: dict[str, float | None]
    dead_letters_per_s: float | None
    forward_latency_s: float | None
    batch_duration_s: float | None
    end_to_end_s: float | None


# --- gathering ------------------------------------------------------------------------------------


def take_snapshot(settings: Settings, timeout_s: float = 1.0, read_database: bool = True) -> Snapshot:
    """Read every source once; one that does not answer within `timeout_s` (the database: 5 s) is Unavailable.

    `read_database=False` leaves the database out, for callers sampling often (the bench) that need only rates.
    """
    taken_at, clock_s = datetime.now(UTC), time.monotonic()
    b, s = settings.bridge, settings.stream
    bridge = _scrape("bridge", b.metrics_host, b.metrics_port, "bridge.metrics_port", timeout_s)
    stream = _scrape("stream", s.metrics_host, s.metrics_port, "stream.metrics_port", timeout_s)
    return Snapshot(
        taken_at=taken_at,
        clock_s=clock_s,
        bridge=bridge if isinstance(bridge, Unavailable) else bridge_figures(bridge),
        stream=stream if isinstance(stream, Unavailable) else stream_figures(stream),
        database=database_figures(settings) if read_database else Unavailable("not read"),
    )


def _scrape(command: str, host: str, port: int | None, setting: str, timeout_s: float) -> Scrape | Unavailable:
    if port is None:
        return Unavailable(f"{setting} is unset, so `sensorpipe {command}` exports no metrics: set it and restart it")
    url = f"http://{host}:{port}/metrics"
    try:
        return scrape(host, port, timeout_s)
    except ScrapeError as e:
        return Unavailable(
            f"no metrics at {url} ({e.reason}): is `sensorpipe {command}` running, with {setting} {port}?"
        )
    except ValueError as e:  # something answered, but not in Prometheus' text format
        return Unavailable(f"{url} answered without Prometheus metrics ({e}): is {setting} {port} another program's?")


def bridge_figures(metrics: Scrape) -> BridgeFigures:
    """The bridge's figures out of one scrape (see `bridge/metrics.py`); absent series count 0."""

    def value(name: str) -> float:
        return metrics.total(f"sensorpipe_bridge_{name}") or 0.0

    return BridgeFigures(
        received=int(value("received_total")),
        forwarded=int(value("forwarded_total")),
        dead_lettered=_counts(metrics.by_label("sensorpipe_bridge_dead_lettered_total", "reason")),
        errors=int(value("errors_total")),
        in_flight=int(value("in_flight")),
        mqtt_connected=value("mqtt_connected") == 1,
        kafka_reachable=value("kafka_reachable") == 1,
        forward_latency=Observed(value("forward_latency_seconds_sum"), int(value("forward_latency_seconds_count"))),
    )


def stream_figures(metrics: Scrape) -> StreamFigures:
    """The stream job's figures out of one scrape (see `stream/monitoring.py`); absent series count 0."""

    def value(name: str, **labels: str) -> float:
        return metrics.total(f"sensorpipe_stream_{name}", **labels) or 0.0

    lag = metrics.total("sensorpipe_stream_kafka_lag_offsets", query=READINGS_QUERY)
    state = "sensorpipe_stream_query_state"  # an Enum: one sample per state, 1 for the current one
    latency_buckets = metrics.by_label("sensorpipe_stream_reading_latency_seconds_bucket", "le")
    return StreamFigures(
        read=int(value("input_rows_total", query=READINGS_QUERY)),
        sink_rows=_counts(metrics.by_label("sensorpipe_stream_sink_rows_total", "sink")),
        rejected=_counts(metrics.by_label("sensorpipe_stream_rejected_rows_total", "reason")),
        kafka_lag=None if lag is None else int(lag),
        queries={s.labels["query"]: s.labels[state] for s in metrics.samples if s.name == state and s.value == 1},
        batch_duration=Observed(
            value("batch_duration_seconds_sum", query=READINGS_QUERY),
            int(value("batch_duration_seconds_count", query=READINGS_QUERY)),
        ),
        end_to_end=Observed(value("reading_latency_seconds_sum"), int(value("reading_latency_seconds_count"))),
        end_to_end_buckets=tuple(sorted((float(le), n) for le, n in latency_buckets.items())),
    )


def database_figures(settings: Settings) -> DatabaseFigures | Unavailable:
    """The latest reading of every sensor and the rejects of the last hour, read as the read-only role."""
    pg = settings.postgres
    try:
        with connected(pg, "reader") as conn:
            rows = conn.execute(LATEST_READINGS).fetchall()
            rejects = conn.execute(REJECTS_LAST_HOUR).fetchone()
    except StorageError as e:
        return Unavailable(str(e))
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege) as e:
        where = f"{pg.database} at {pg.host}:{pg.port}"
        return Unavailable(f"{e.diag.message_primary} in {where}: run `sensorpipe db migrate`")
    except psycopg.Error as e:
        detail = (str(e).strip().splitlines() or ["no detail"])[0]
        return Unavailable(f"PostgreSQL at {pg.host}:{pg.port} failed the query as {pg.reader_user} ({detail})")
    return DatabaseFigures(
        latest=tuple(LatestReading(*row) for row in rows),
        rejects_last_hour=int(rejects[0]) if rejects else 0,
    )


def _counts(by_label: dict[str, float]) -> dict[str, int]:
    return {label: int(n) for label, n in sorted(by_label.items())}


# --- rates ----------------------------------------------------------------------------------------


def between(before: Snapshot, after: Snapshot) -> Frame:
    """The frame of `after`, with rates per second and means since `before` (the same snapshot: none yet)."""
    elapsed = after.clock_s - before.clock_s
    was, now = stage_totals(before), stage_totals(after)
    b0, b1 = known(before.bridge), known(after.bridge)
    s0, s1 = known(before.stream), known(after.stream)
    dead = [
        _rate(b0.dead_letters, b1.dead_letters, elapsed) if b0 and b1 else None,
        _rate(s0.dead_letters, s1.dead_letters, elapsed) if s0 and s1 else None,
    ]
    answered = [rate for rate in dead if rate is not None]
    return Frame(
        snapshot=after,
        interval_s=elapsed,
        totals=now,
        rates={key: _rate(was[key], now[key], elapsed) for key, _ in STAGES},
        dead_letters_per_s=sum(answered) if answered else None,
        forward_latency_s=b1.forward_latency.mean_since(b0.forward_latency) if b0 and b1 else None,
        batch_duration_s=s1.batch_duration.mean_since(s0.batch_duration) if s0 and s1 else None,
        end_to_end_s=s1.end_to_end.mean_since(s0.end_to_end) if s0 and s1 else None,
    )


def stage_totals(snapshot: Snapshot) -> dict[str, int | None]:
    """Each stage's counter in `snapshot`; None where its source was unavailable."""
    bridge, stream = known(snapshot.bridge), known(snapshot.stream)
    return {
        "mqtt_received": bridge.received if bridge else None,
        "kafka_forwarded": bridge.forwarded if bridge else None,
        "stream_read": stream.read if stream else None,
        "database_rows": stream.sink_rows.get("database", 0) if stream else None,
        "lake_rows": stream.sink_rows.get("lake", 0) if stream else None,
    }


def dead_letter_total(snapshot: Snapshot) -> int | None:
    """Bridge dead-lettered plus stream rejected, of the sources that answered; None when neither did."""
    counts = [source.dead_letters for source in (known(snapshot.bridge), known(snapshot.stream)) if source]
    return sum(counts) if counts else None


def known(source: _T | Unavailable) -> _T | None:
    """The figures of a source that answered, else None."""
    return None if isinstance(source, Unavailable) else source


def _rate(before: int | None, after: int | None, elapsed_s: float) -> float | None:
    """Per second; a counter that went down belongs to a restarted process, which counted `after` since."""
    if before is None or after is None or elapsed_s <= 0:
        return None
    return (after if after < before else after - before) / elapsed_s


def shown_sensors(database: DatabaseFigures, limit: int) -> list[LatestReading]:
    """The `limit` stalest sensors, stalest first: a silent sensor is never cut off below fresh ones."""
    return sorted(database.latest, key=lambda r: (-r.age_s, r.sensor_id))[:limit]


def silent_sensors(database: DatabaseFigures, silent_after_s: float) -> int:
    """Sensors whose latest reading is `silent_after_s` old or older (Grafana's silent-sensor alert, in a glance)."""
    return sum(1 for reading in database.latest if reading.age_s >= silent_after_s)


__all__ = [
    "READINGS_QUERY",
    "STAGES",
    "BridgeFigures",
    "DatabaseFigures",
    "Frame",
    "LatestReading",
    "Observed",
    "Snapshot",
    "StreamFigures",
    "Unavailable",
    "between",
    "bridge_figures",
    "database_figures",
    "dead_letter_total",
    "known",
    "shown_sensors",
    "silent_sensors",
    "stage_totals",
    "stream_figures",
    "take_snapshot",
]
