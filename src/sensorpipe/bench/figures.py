"""From the bench's once-a-second samples to the report's figures: rates, latency, resources.

The runner (`runner.Bench`) samples; this module only computes, so each figure's definition can be read
and tested on its own. All times are seconds since the mode started (monotonic clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sensorpipe.bench.report import Component, Series
from sensorpipe.bench.stats import (
    Percentiles,
    Sample,
    histogram_delta,
    histogram_percentiles,
    histogram_quantile,
    rates,
    window_rate,
)
from sensorpipe.bench.steps import StepOutcome

Buckets = tuple[tuple[float, float], ...]
"""A Prometheus histogram's (upper bound, cumulative count) pairs, +Inf included."""

LATENCY_WINDOW_S = 5.0
"""p99 over time is computed over sliding windows of this length."""
WARMUP_LIMIT_S = 5.0
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


@dataclass
class Step:
    """One offered rate: when it ran (mode time and wall clock) and what the broker acknowledged."""

    rate: float
    duration_s: float
    """How long the publisher was asked to offer `rate` (its process start-up and drain come on top)."""
    start: float
    wall_start: datetime
    sim_end: float = 0.0
    wall_end: datetime = field(default_factory=lambda: datetime.now(UTC))
    drained_at: float = 0.0
    drained: bool = False
    acknowledged: int = 0

    @property
    def warm(self) -> float:
        """Where the measured window starts: after the first quarter of the step, at most 5 s."""
        return self.start + min(WARMUP_LIMIT_S, (self.sim_end - self.start) / 4)


def cumulative(probes: Sequence[Probe], key: str, scale: float = 1.0) -> list[Sample]:
    """A stage's counter over time; after a restart (the counter went down) it carries on from its last value."""
    series: list[Sample] = []
    offset = last = 0.0
    for p in probes:
        value = p.totals.get(key)
        if value is None:
            continue
        if value < last:
            offset += last
        last = value
        series.append((p.t, (offset + value) * scale))
    return series


def sustained(probes: Sequence[Probe], step: Step, key: str) -> float:
    """Readings/s a sink took while the load ran, its warm-up left out (0 without two samples in it)."""
    series = cumulative(probes, key)
    if len(series) < 2 or step.sim_end <= step.warm:
        return 0.0
    return window_rate(series, step.warm, step.sim_end)


def lag_outcome(step: Step, probes: Sequence[Probe], batch: int) -> StepOutcome:
    """What `steps.judge` needs of a step: its rate, duration, acknowledged readings and backlog over time.

    The backlog is counted in Kafka records, one per MQTT message: times `batch` it is in readings, as the
    rate is (a gateway record holds `batch` readings).
    """
    lag = [
        (p.t - step.start, float(p.backlog * batch))
        for p in probes
        if step.start <= p.t <= step.sim_end and p.backlog is not None
    ]
    return StepOutcome(step.rate, step.duration_s, step.acknowledged, lag)


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
    window = [p for p in probes if step.warm <= p.t <= step.sim_end]
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
    "Buckets",
    "Probe",
    "Step",
    "components",
    "cumulative",
    "lag_outcome",
    "latency",
    "p99_series",
    "rate_series",
    "sustained",
]
