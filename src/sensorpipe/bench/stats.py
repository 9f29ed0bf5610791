"""Percentiles, rates and fractions for the bench report: the arithmetic a performance claim rests on.

Percentiles use linear interpolation between closest ranks, numpy's default (`method="linear"`, Hyndman and
Fan's type 7): the q-quantile of n sorted samples sits at position h = (n - 1) q, between samples floor(h)
and ceil(h). It is what readers will recompute with numpy or a spreadsheet, and it never reports a value
outside the samples. Quantiles are given as fractions (0.99), not percents, as `bucket_quantile` takes them.

From Prometheus histograms (where the pipeline's components only export bucket counts), quantiles are
`sensorpipe.bridge.metrics.bucket_quantile`: interpolated inside the bucket, as PromQL's
`histogram_quantile` does; that is an estimate bounded by the bucket widths, and the report says which
source a latency came from.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sensorpipe.bridge.metrics import bucket_quantile

REPORTED_QUANTILES = (0.5, 0.95, 0.99)

Sample = tuple[float, float]
"""(time in seconds, value): a counter's cumulative count, a lag, a rate or a latency at that time."""


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles in seconds; None where there were no samples."""

    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    count: int = 0
    source: str = "samples"
    """"samples" (each reading's latency) or "histogram" (bucket estimate)."""


def quantile(samples: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 ≤ q ≤ 1) of raw samples, linear between closest ranks (numpy's default); None if empty."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile is a fraction from 0 to 1, got {q}")
    if not samples:
        return None
    ordered = sorted(samples)
    h = (len(ordered) - 1) * q
    below = math.floor(h)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (h - below) * (ordered[above] - ordered[below])


def percentiles(samples: Sequence[float]) -> Percentiles:
    """p50, p95 and p99 of raw latency samples in seconds (sorted once)."""
    ordered = sorted(samples)
    p50, p95, p99 = (quantile(ordered, q) for q in REPORTED_QUANTILES)
    return Percentiles(p50, p95, p99, count=len(ordered))


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The q-quantile from Prometheus buckets: (upper bound `le`, cumulative count), the +Inf bucket included.

    The +Inf bucket's count is the total; a rank beyond the last finite bound reports that bound.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile is a fraction from 0 to 1, got {q}")
    ordered = sorted(buckets)
    finite = [(le, n) for le, n in ordered if math.isfinite(le)]
    if not finite:
        return None
    total = ordered[-1][1]
    return bucket_quantile([le for le, _ in finite], [n for _, n in finite], total, q)


def histogram_delta(
    before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The buckets of the observations made between two scrapes: a window's histogram, without warm-up.

    Bounds missing from `before` count as 0 (the first scrape of a process that had observed nothing).
    A bucket that went down means the process restarted in between: that is an error, not a negative count.
    """
    earlier = dict(before)
    delta = []
    for le, n in sorted(after):
        d = n - earlier.get(le, 0.0)
        if d < 0:
            raise ValueError(f"bucket le={le} went from {earlier[le]} to {n}: the process restarted between scrapes")
        delta.append((le, d))
    return delta


def histogram_percentiles(buckets: Sequence[tuple[float, float]]) -> Percentiles:
    """p50, p95 and p99 from Prometheus buckets (see `histogram_quantile`)."""
    total = max((n for _, n in buckets), default=0.0)
    p50, p95, p99 = (histogram_quantile(buckets, q) for q in REPORTED_QUANTILES)
    return Percentiles(p50, p95, p99, count=int(total), source="histogram")


def value_at(series: Sequence[Sample], t: float) -> float:
    """A cumulative counter's value at time t, linear between the samples around it (clamped at the ends)."""
    if not series:
        raise ValueError("no samples")
    if t <= series[0][0]:
        return series[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(series):
        if t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return series[-1][1]


def window_rate(series: Sequence[Sample], start: float, end: float) -> float:
    """Events per second of a cumulative counter between `start` and `end`, interpolated at both ends."""
    if end <= start:
        raise ValueError(f"the window must end after it starts ({start} → {end})")
    return (value_at(series, end) - value_at(series, start)) / (end - start)


def sustained_rate(landed: Sequence[Sample], warmup_end: float, run_end: float) -> float:
    """Readings landed between the end of warm-up and the end of the run, divided by that time.

    `landed` is a sink's cumulative count of the run's readings over time (rows in `sensor_data`, rows in
    the lake). Warm-up is excluded because the first micro-batches include the JVM's and the writers' start;
    the readings still in flight at the end are excluded because they have not landed.
    """
    return window_rate(landed, warmup_end, run_end)


def rates(series: Sequence[Sample]) -> list[Sample]:
    """Rate over time from a cumulative counter: one (midpoint, events/s) per pair of consecutive samples."""
    return [((t0 + t1) / 2, (v1 - v0) / (t1 - t0)) for (t0, v0), (t1, v1) in itertools.pairwise(series) if t1 > t0]


def fraction(value: float | None, ceiling: float | None) -> float | None:
    """`value` as a fraction of `ceiling` (0.8 for 80 %); None when either is unknown or the ceiling is not positive."""
    if value is None or ceiling is None or ceiling <= 0:
        return None
    return value / ceiling


__all__ = [
    "REPORTED_QUANTILES",
    "Percentiles",
    "Sample",
    "fraction",
    "histogram_delta",
    "histogram_percentiles",
    "histogram_quantile",
    "percentiles",
    "quantile",
    "rates",
    "sustained_rate",
    "value_at",
    "window_rate",
]
