"""The bridge's latency percentiles and totals, as its status lines and the bench report them."""

from __future__ import annotations

import pytest

from sensorpipe.bridge.metrics import BridgeMetrics, bucket_quantile


def test_quantile_interpolates_inside_the_bucket_holding_the_rank() -> None:
    bounds = (1.0, 2.0, 4.0)
    cumulative = (0.0, 10.0, 10.0)
    assert bucket_quantile(bounds, cumulative, 10, 0.5) == pytest.approx(1.5)
    assert bucket_quantile(bounds, cumulative, 10, 1.0) == pytest.approx(2.0)


def test_quantile_beyond_the_last_bound_reports_the_last_bound() -> None:
    assert bucket_quantile((1.0, 2.0), (1.0, 1.0), 10, 0.99) == 2.0


def test_no_observation_no_quantile() -> None:
    assert bucket_quantile((1.0,), (0.0,), 0, 0.5) is None


def test_snapshot_counts_and_percentiles_from_real_observations() -> None:
    metrics = BridgeMetrics()
    for _ in range(98):
        metrics.latency.observe(0.004)
    metrics.latency.observe(0.4)
    metrics.latency.observe(0.4)
    metrics.received.inc(100)
    metrics.forwarded.inc(100)
    metrics.dead_lettered.labels("payload_too_large").inc()
    metrics.errors.labels("kafka_retry").inc(2)
    metrics.errors.labels("mqtt_disconnect").inc()
    snap = metrics.snapshot()
    assert (snap.received, snap.forwarded, snap.dead_lettered, snap.errors) == (100, 100, 1, 3)
    assert snap.latency_p50_ms is not None and 3.0 < snap.latency_p50_ms <= 5.0
    assert snap.latency_p99_ms is not None and 300 < snap.latency_p99_ms <= 500


def test_two_bridges_in_one_process_keep_separate_counts() -> None:
    first, second = BridgeMetrics(), BridgeMetrics()
    first.received.inc(5)
    assert (first.total("received"), second.total("received")) == (5, 0)
