"""Reconnect delays grow, stay bounded, are jittered and start over after a success."""

from __future__ import annotations

import random

import pytest

from sensorpipe.clients.backoff import Backoff


def test_delays_are_jittered_below_a_doubling_cap_that_stops_at_the_maximum() -> None:
    backoff = Backoff(initial_s=0.1, max_s=2.0, rng=random.Random(1))
    caps = []
    for _ in range(12):
        cap = backoff.cap_s
        delay = backoff.next_delay()
        assert 0 <= delay <= cap
        caps.append(cap)
    assert caps[:6] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0])
    assert set(caps[5:]) == {2.0}
    assert backoff.attempts == 12


def test_jitter_spreads_clients_that_failed_together() -> None:
    delays = {round(Backoff(1.0, 8.0, rng=random.Random(seed)).next_delay(), 6) for seed in range(50)}
    assert len(delays) == 50


def test_reset_starts_over_and_it_never_overflows() -> None:
    backoff = Backoff(0.5, 30.0, rng=random.Random(2))
    for _ in range(5000):
        backoff.next_delay()
    assert backoff.cap_s == 30.0
    backoff.reset()
    assert backoff.cap_s == 0.5


def test_nonsense_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(5, 1)
