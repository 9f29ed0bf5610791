"""What the bridge counts, exported to Prometheus and summarised in its status lines."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# MQTT receive → Kafka acknowledgement, from half a millisecond (idle, local) to minutes (Kafka down).
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip


class BridgeMetrics:
    """One registry per bridge, so that several bridges (or tests) in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("sensorpipe_bridge_received", "MQTT messages received", registry=r)
        self.forwarded = Counter("sensorpipe_bridge_forwarded", "messages Kafka confirmed (acks=all)", registry=r)
        self.acknowledged = Counter(
            "sensorpipe_bridge_acknowledged",
            "MQTT messages acknowledged to the broker after Kafka confirmed",
            registry=r,
        )
        self.dead_lettered = Counter(
            "sensorpipe_bridge_dead_lettered", "messages sent to the dead-letter topic", ["reason"], registry=r
        )
        self.errors = Counter("sensorpipe_bridge_errors", "errors by kind (all recovered)", ["kind"], registry=r)
        self.in_flight = Gauge("sensorpipe_bridge_in_flight", "received, not yet acknowledged", registry=r)
        self.mqtt_connected = Gauge("sensorpipe_bridge_mqtt_connected", "1 while connected to MQTT", registry=r)
        self.mqtt_subscribed = Gauge(
            "sensorpipe_bridge_mqtt_subscribed", "1 once the broker confirmed the subscriptions (SUBACK)", registry=r
        )
        self.kafka_reachable = Gauge("sensorpipe_bridge_kafka_reachable", "0 while Kafka is unreachable", registry=r)
        self.latency = Histogram(
            "sensorpipe_bridge_forward_latency_seconds",
            "MQTT receive to Kafka acknowledgement",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )

    def total(self, name: str) -> float:
        """Current value of a counter (summed over labels), e.g. `total("forwarded")`."""
        value = 0.0
        for metric in self.registry.collect():
            if metric.name == f"sensorpipe_bridge_{name}":
                value += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        return value

    def latency_quantiles(self, *qs: float) -> list[float | None]:
        """Quantiles of the forward latency in seconds, interpolated within buckets as Prometheus does."""
        samples = [s for metric in self.latency.collect() for s in metric.samples]
        counts = [s.value for s in samples if s.name.endswith("_bucket") and s.labels["le"] != "+Inf"]
        total = next(s.value for s in samples if s.name.endswith("_count"))
        return [bucket_quantile(LATENCY_BUCKETS_S, counts, total, q) for q in qs]

    def snapshot(self) -> BridgeSnapshot:
        p50, p99 = self.latency_quantiles(0.5, 0.99)
        return BridgeSnapshot(
            received=int(self.total("received")),
            forwarded=int(self.total("forwarded")),
            acknowledged=int(self.total("acknowledged")),
            dead_lettered=int(self.total("dead_lettered")),
            errors=int(self.total("errors")),
            in_flight=int(self.registry.get_sample_value("sensorpipe_bridge_in_flight") or 0),
            latency_p50_ms=None if p50 is None else round(p50 * 1000, 2),
            latency_p99_ms=None if p99 is None else round(p99 * 1000, 2),
        )


@dataclass(frozen=True)
class BridgeSnapshot:
    """Totals since the bridge started, as the status line, `--json` and the bench report them."""

    received: int
    forwarded: int
    acknowledged: int
    dead_lettered: int
    errors: int
    in_flight: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None


def bucket_quantile(bounds: Sequence[float], cumulative: Sequence[float], total: float, q: float) -> float | None:
    """The q-quantile from cumulative bucket counts (upper bounds `bounds`); None without observations.

    Linear interpolation inside the bucket that holds the rank; ranks beyond the last bound report it.
    """
    if total <= 0:
        return None
    rank = q * total
    index = bisect.bisect_left(cumulative, rank)
    if index >= len(bounds):
        return bounds[-1]
    lower = bounds[index - 1] if index > 0 else 0.0
    below = cumulative[index - 1] if index > 0 else 0.0
    inside = cumulative[index] - below
    if inside <= 0:
        return bounds[index]
    return lower + (bounds[index] - lower) * (rank - below) / inside
