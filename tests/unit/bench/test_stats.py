"""The bench's arithmetic: percentiles (numpy's linear method), histogram quantiles, rates and fractions."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from sensorpipe.bench.stats import (
    fraction,
    histogram_delta,
    histogram_percentiles,
    histogram_quantile,
    percentiles,
    quantile,
    rates,
    sustained_rate,
    value_at,
    window_rate,
)


def test_quantile_hand_computed_linear_between_closest_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0, 5.0]  # sorted 1..5, h = 4q
    assert quantile(samples, 0.5) == 3.0
    assert quantile(samples, 0.0) == 1.0
    assert quantile(samples, 1.0) == 5.0
    assert quantile(samples, 0.95) == pytest.approx(4.8)  # h = 3.8: 4 + 0.8 * (5 - 4)
    assert quantile(samples, 0.99) == pytest.approx(4.96)
    assert quantile([10.0, 20.0], 0.25) == pytest.approx(12.5)
    assert quantile([7.0], 0.99) == 7.0


def test_quantile_matches_numpy_default() -> None:
    rng = random.Random(7)
    for n in (1, 2, 3, 10, 101, 1000):
        samples = [rng.expovariate(10) for _ in range(n)]
        for q in (0.0, 0.5, 0.95, 0.99, 1.0):
            assert quantile(samples, q) == pytest.approx(float(np.quantile(samples, q)))


def test_quantile_of_nothing_is_none_and_bad_q_is_refused() -> None:
    assert quantile([], 0.5) is None
    with pytest.raises(ValueError, match="fraction"):
        quantile([1.0], 99)


def test_percentiles_of_a_hundred_samples() -> None:
    result = percentiles([i / 100 for i in range(1, 101)])  # 0.01 … 1.00
    assert result.count == 100
    assert result.source == "samples"
    assert result.p50_s == pytest.approx(0.505)
    assert result.p95_s == pytest.approx(0.9505)
    assert result.p99_s == pytest.approx(0.9901)
    empty = percentiles([])
    assert (empty.p50_s, empty.p99_s, empty.count) == (None, None, 0)


BUCKETS = [(0.25, 0.0), (0.5, 50.0), (1.0, 90.0), (2.0, 100.0), (math.inf, 100.0)]


def test_histogram_quantile_interpolates_in_the_bucket() -> None:
    assert histogram_quantile(BUCKETS, 0.5) == pytest.approx(0.5)  # rank 50 is the top of (0.25, 0.5]
    assert histogram_quantile(BUCKETS, 0.25) == pytest.approx(0.375)  # rank 25: half way through (0.25, 0.5]
    assert histogram_quantile(BUCKETS, 0.95) == pytest.approx(1.5)  # rank 95: half way through (1, 2]
    assert histogram_quantile(list(reversed(BUCKETS)), 0.95) == pytest.approx(1.5)


def test_histogram_quantile_beyond_the_last_bound_and_empty() -> None:
    overflow = [(1.0, 50.0), (2.0, 90.0), (math.inf, 100.0)]
    assert histogram_quantile(overflow, 0.99) == 2.0
    assert histogram_quantile([(1.0, 0.0), (math.inf, 0.0)], 0.5) is None
    assert histogram_quantile([(math.inf, 5.0)], 0.5) is None


def test_histogram_percentiles_say_their_source() -> None:
    result = histogram_percentiles(BUCKETS)
    assert result.source == "histogram"
    assert result.count == 100
    assert result.p50_s == pytest.approx(0.5)
    assert result.p99_s == pytest.approx(1.9)


def test_histogram_delta_is_the_window_and_refuses_a_restart() -> None:
    before = [(0.5, 10.0), (1.0, 10.0), (math.inf, 10.0)]
    after = [(0.5, 10.0), (1.0, 30.0), (math.inf, 30.0)]
    assert histogram_delta(before, after) == [(0.5, 0.0), (1.0, 20.0), (math.inf, 20.0)]
    assert histogram_delta([], after) == sorted(after)
    with pytest.raises(ValueError, match="restarted"):
        histogram_delta(after, before)


COUNTER = [(0.0, 0.0), (10.0, 1000.0), (20.0, 3000.0), (30.0, 6000.0)]


def test_counter_value_interpolates_and_clamps() -> None:
    assert value_at(COUNTER, 5.0) == 500.0
    assert value_at(COUNTER, 15.0) == 2000.0
    assert value_at(COUNTER, -1.0) == 0.0
    assert value_at(COUNTER, 99.0) == 6000.0
    with pytest.raises(ValueError, match="no samples"):
        value_at([], 1.0)


def test_window_and_sustained_rates_exclude_warm_up() -> None:
    assert window_rate(COUNTER, 10.0, 30.0) == 250.0
    assert sustained_rate(COUNTER, 10.0, 30.0) == 250.0
    assert sustained_rate(COUNTER, 15.0, 25.0) == pytest.approx((4500 - 2000) / 10)
    with pytest.raises(ValueError, match="end after"):
        window_rate(COUNTER, 10.0, 10.0)


def test_rates_between_consecutive_samples() -> None:
    assert rates(COUNTER) == [(5.0, 100.0), (15.0, 200.0), (25.0, 300.0)]
    assert rates([(1.0, 5.0), (1.0, 9.0)]) == []


def test_fraction_of_a_ceiling() -> None:
    assert fraction(7000, 8750) == pytest.approx(0.8)
    assert fraction(None, 10) is None
    assert fraction(1, None) is None
    assert fraction(1, 0) is None
