"""From the bench's once-a-second samples to the report's figures: rates, latency, resources.

The runner (`runner.Bench`) samples; this module only computes, so each figure's definition can be read
and tested on its own. All times are seconds since the mode started (monotonic clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sensorpipe.bench.report import CPU_FIGURE_READINGS, Component, Series, StepReport
from sensorpipe.bench.stats import (
    Percentiles,
    Sample,
    histogram_delta,
    histogram_percentiles,
    histogram_quantile,
    rates,
    value_at,
    window_rate,
)
from sensorpipe.bench.steps import StepOutcome, Verdict, measured_start

Buckets = tuple[tuple[float, float], ...]
"""A Prometheus histogram's (upper bound, cumulative count) pairs, +Inf included."""

LATENCY_WINDOW_S = 5.0
"""p99 over time is computed over sliding windows of this length."""
TICK_S = 0.2
"""How often the runner reads the stream job's counters while a step's load runs (`Tick`)."""
STAGE_SERIES = (
    ("mqtt_received", "mqtt (bridge received)"),
    ("kafka_forwarded", "kafka (bridge forwarded)"),
    ("database_rows", "database"),
    ("lake_rows", "lake"),
)
MESSAGE_STAGES = {"mqtt_received", "kafka_forwarded"}
"""Counted in messages by the bridge: times the batch size for readings/s."""


@dataclass(frozen=True)
class Probe:
    """Everything sampled at one moment."""

    t: float
    totals: dict[str, int | None]
    """Each stage's counter (`monitoring.top.stage_totals`); None where its process did not answer."""
    backlog: int | None
    """Kafka records (MQTT messages) the stream job has not committed (`launch.stream_backlog`)."""
    buckets: Buckets | None
    """The stream job's publish → stored latency histogram."""
    cpu: dict[str, float]
    """CPU seconds so far per component (process tree)."""
    rss: dict[str, int]
    """Resident bytes now per component: the process tree's proportional set size (`process.pss_bytes`)."""


@dataclass(frozen=True)
class Tick:
    """The stream job's counters, read between two probes: the database's counter rises once per micro-batch,
    and a probe a second apart times that rise (the commit) too coarsely for a landing rate."""

    t: float
    rows: int
    """Readings stored in the database so far (`sensorpipe_stream_sink_rows_total{sink="database"}`)."""
    batches: int
    """Micro-batches of the readings query so far."""


@dataclass
class Step:
    """One offered rate: when it ran (mode time and wall clock) and what the broker acknowledged."""

    rate: float
    duration_s: float
    """How long the publisher published: planned, then its own clock's figure once it ended."""
    start: float
    wall_start: datetime
    sim_end: float = 0.0
    """When the simulator process had ended (its acknowledgements drained)."""
    wall_end: datetime = field(default_factory=lambda: datetime.now(UTC))
    stopped: float | None = None
    """When the bench told the simulator to stop; None when it ran to its own end."""
    drained_at: float = 0.0
    drained: bool = False
    settled_at: float = 0.0
    """When the step's readings were in both sinks (drained, and the lake committed): its work was done."""
    acknowledged: int = 0
    ticks: list[Tick] = field(default_factory=list)

    @property
    def load_end(self) -> float:
        """When the load stopped."""
        return self.stopped if self.stopped is not None else self.sim_end

    @property
    def warm(self) -> float:
        """Where the measured window starts: after the first quarter of the step, at most 5 s."""
        return measured_start(self.start, self.load_end)


def carried(points: Sequence[Sample], scale: float = 1.0) -> list[Sample]:
    """A counter over time; after a restart (the counter went down) it carries on from its last value."""
    series: list[Sample] = []
    offset = last = 0.0
    for t, value in points:
        if value < last:
            offset += last
        last = value
        series.append((t, (offset + value) * scale))
    return series


def cumulative(probes: Sequence[Probe], key: str, scale: float = 1.0) -> list[Sample]:
    """A stage's counter over time, carried over restarts (`carried`)."""
    return carried([(p.t, float(value)) for p in probes if (value := p.totals.get(key)) is not None], scale)


def sustained(probes: Sequence[Probe], step: Step, key: str) -> float:
    """Readings/s a sink took while the load ran, its warm-up left out (0 without two samples in it)."""
    series = cumulative(probes, key)
    if len(series) < 2 or step.load_end <= step.warm:
        return 0.0
    return window_rate(series, step.warm, step.load_end)


def batches_between(ticks: Sequence[Tick], start: float, end: float) -> int | None:
    """Micro-batches the readings query completed between `start` and `end`; None without two ticks there."""
    inside = carried([(k.t, float(k.batches)) for k in ticks if start <= k.t <= end])
    return None if len(inside) < 2 else round(inside[-1][1] - inside[0][1])


def measured_batches(step: Step) -> int | None:
    """Micro-batches in the step's measured window (`steps.MIN_BATCHES` is what a step is extended to)."""
    return batches_between(step.ticks, step.warm, step.load_end)


def landing_rate(step: Step) -> float | None:
    """Readings/s the database took over the step's measured window: the slope of the line fitted through its
    micro-batch commits (when, readings stored so far), each timed to one tick (TICK_S).

    The counter rises once per micro-batch, so a rate between two fixed moments is off by up to a batch's
    readings, and one between the first and the last commit by the jitter of those two batches' durations;
    a line through every commit averages both out (the saw-tooth a fit through all samples suffers is not
    in the corners of the staircase). A pipeline falling behind commits ever later: the slope drops below
    the offered rate. None with fewer than two commits seen in the window.
    """
    rows = carried([(k.t, float(k.rows)) for k in step.ticks if step.warm <= k.t <= step.load_end])
    commits = [rows[i] for i in range(1, len(rows)) if rows[i][1] > rows[i - 1][1]]
    if len(commits) < 2:
        return None
    mean_t = sum(t for t, _ in commits) / len(commits)
    mean_v = sum(v for _, v in commits) / len(commits)
    spread = sum((t - mean_t) ** 2 for t, _ in commits)
    if spread <= 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in commits) / spread


def landed(step: Step, probes: Sequence[Probe]) -> float:
    """The step's landing rate in the database: `landing_rate`, else (no ticks) the counter's rate between the
    probes at the window's ends."""
    rate = landing_rate(step)
    return rate if rate is not None else sustained(probes, step, "database_rows")


def step_outcome(step: Step, probes: Sequence[Probe], batch: int) -> StepOutcome:
    """What `steps.judge` needs of a step: its rate, duration, acknowledged readings, backlog over time and
    landing rate.

    The backlog is counted in Kafka records, one per MQTT message: times `batch` it is in readings, as the
    rate is (a gateway record holds `batch` readings).
    """
    lag = [
        (p.t - step.start, float(p.backlog * batch))
        for p in probes
        if step.start <= p.t <= step.load_end and p.backlog is not None
    ]
    return StepOutcome(step.rate, step.duration_s, step.acknowledged, lag, landed(step, probes))


def cpu_per_readings(probes: Sequence[Probe], step: Step, component: str) -> float | None:
    """CPU seconds `component` used per CPU_FIGURE_READINGS readings stored in the database, from the
    step's start until its readings were in both sinks (so the lake's commit of them counts too).

    None without two samples of both, or when nothing was stored.
    """
    cpu = carried([(p.t, p.cpu[component]) for p in probes if component in p.cpu])
    rows = cumulative(probes, "database_rows")
    end = step.settled_at or step.drained_at or step.load_end
    if len(cpu) < 2 or len(rows) < 2 or end <= step.start:
        return None
    stored = value_at(rows, end) - value_at(rows, step.start)
    if stored <= 0:
        return None
    return (value_at(cpu, end) - value_at(cpu, step.start)) / stored * CPU_FIGURE_READINGS


def step_report(step: Step, verdict: Verdict, probes: Sequence[Probe], stream: str, kind: str) -> StepReport:
    """A judged step for the report: its verdict beside the figures it rests on; `stream` names the stream
    job's component in the probes' CPU."""
    return StepReport(
        rate=step.rate,
        sustainable=verdict.sustainable,
        landed=verdict.landed,
        end_backlog=verdict.end_backlog,
        reason=verdict.reason,
        load_s=step.load_end - step.start,
        batches=measured_batches(step),
        stream_cpu_per_10k=cpu_per_readings(probes, step, stream),
        kind=kind,
    )


def _buckets_until(probes: Sequence[Probe], t: float) -> Buckets | None:
    """The histogram of the last sample at or before t."""
    return next((p.buckets for p in reversed(probes) if p.buckets is not None and p.t <= t), None)


def latency(probes: Sequence[Probe], step: Step) -> Percentiles:
    """Publish → stored of the readings stored from the end of the step's warm-up until it drained."""
    after = _buckets_until(probes, step.drained_at)
    if after is None:
        return Percentiles(None, None, None, source="histogram")
    try:
        return histogram_percentiles(histogram_delta(_buckets_until(probes, step.warm) or (), after))
    except ValueError:  # the stream job restarted within the step: its histogram started over
        return Percentiles(None, None, None, source="histogram")


def p99_series(probes: Sequence[Probe]) -> Series:
    """p99 publish → stored over sliding windows of LATENCY_WINDOW_S, where readings were stored."""
    points: list[Sample] = []
    sampled = [(p.t, p.buckets) for p in probes if p.buckets is not None]
    for i, (t, buckets) in enumerate(sampled):
        earlier = [b for s, b in sampled[:i] if s <= t - LATENCY_WINDOW_S]
        if not earlier:
            continue
        try:
            delta = histogram_delta(earlier[-1], buckets)
        except ValueError:
            continue
        if max((n for _, n in delta), default=0) > 0 and (p99 := histogram_quantile(delta, 0.99)) is not None:
            points.append((t, p99))
    return Series("p99 publish → stored", "s", tuple(points))


def rate_series(probes: Sequence[Probe], batch: int) -> tuple[Series, ...]:
    """Readings/s per stage over time, for the plot."""
    return tuple(
        Series(name, "readings/s", tuple(rates(cumulative(probes, key, batch if key in MESSAGE_STAGES else 1))))
        for key, name in STAGE_SERIES
    )


def components(probes: Sequence[Probe], step: Step) -> tuple[Component, ...]:
    """Average CPU (cores) over the step's measured window, peak resident memory over all the samples."""
    window = [p for p in probes if step.warm <= p.t <= step.load_end]
    parts = []
    for name in sorted({name for p in probes for name in p.rss}):
        inside = [p for p in window if name in p.cpu]
        cores = 0.0
        if len(inside) >= 2 and inside[-1].t > inside[0].t:
            cores = (inside[-1].cpu[name] - inside[0].cpu[name]) / (inside[-1].t - inside[0].t)
        parts.append(Component(name, max(cores, 0.0), max(p.rss.get(name, 0) for p in probes)))
    return tuple(parts)


__all__ = [
    "LATENCY_WINDOW_S",
    "TICK_S",
    "Buckets",
    "Probe",
    "Step",
    "Tick",
    "batches_between",
    "carried",
    "components",
    "cpu_per_readings",
    "cumulative",
    "landed",
    "landing_rate",
    "latency",
    "measured_batches",
    "p99_series",
    "rate_series",
    "step_outcome",
    "step_report",
    "sustained",
]
