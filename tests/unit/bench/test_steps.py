"""`sensorpipe bench --max`: the sustainability rule and the doubling-then-bisecting search."""

from __future__ import annotations

import pytest

from sensorpipe.bench.steps import GROWTH_TOLERANCE, RateSearch, StepOutcome, judge


def simulated_step(rate: float, true_max: float, duration_s: float = 30.0, trigger_s: float = 1.0) -> StepOutcome:
    """A pipeline that drains at most `true_max` readings/s; its lag saw-tooths with the trigger."""
    backlog, points = 0.0, []
    for i in range(int(duration_s * 4) + 1):
        t = i / 4
        backlog = max(0.0, backlog + (rate - true_max) / 4) if i else 0.0
        tooth = rate * ((t % trigger_s) / trigger_s)  # what arrived since the last micro-batch started
        points.append((t, backlog + tooth))
    return StepOutcome(rate=rate, duration_s=duration_s, acknowledged=int(rate * duration_s), lag=points)


def search(true_max: float, start: float = 1000.0) -> RateSearch:
    s = RateSearch(start=start)
    while (rate := s.next_rate()) is not None:
        s.record(rate, judge(simulated_step(rate, true_max)).sustainable)
        assert len(s.steps) < 40
    return s


def test_converges_on_a_system_that_sustains_7300_per_second() -> None:
    s = search(7300)
    assert [r for r, _ in s.steps] == [1000, 2000, 4000, 8000, 6000, 7000, 7500]
    assert s.best == 7000
    assert s.done


@pytest.mark.parametrize("true_max", [150.0, 999.0, 1000.0, 3333.0, 7300.0, 12_345.0, 64_000.0, 500_000.0])
def test_result_is_measured_sustainable_and_within_ten_percent(true_max: float) -> None:
    s = search(true_max)
    assert s.best is not None
    assert true_max / 1.1 <= s.best <= true_max * (1 + GROWTH_TOLERANCE)  # the rule's documented resolution


def test_start_above_the_limit_halves_first() -> None:
    s = search(300, start=1000)
    assert [r for r, _ in s.steps][:3] == [1000, 500, 250]
    assert s.best is not None and 300 / 1.1 <= s.best <= 300 * (1 + GROWTH_TOLERANCE)


def test_nothing_sustainable_ends_at_min_rate() -> None:
    s = RateSearch(start=100, min_rate=20)
    while (rate := s.next_rate()) is not None:
        s.record(rate, False)
    assert [r for r, _ in s.steps] == [100, 50, 25]
    assert s.best is None


def test_max_rate_caps_the_doubling() -> None:
    s = RateSearch(start=1000, max_rate=3000)
    while (rate := s.next_rate()) is not None:
        s.record(rate, True)
    assert [r for r, _ in s.steps] == [1000, 2000, 3000]
    assert s.best == 3000


def test_search_refuses_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="min_rate"):
        RateSearch(start=0)
    with pytest.raises(ValueError, match="tolerance"):
        RateSearch(start=10, tolerance=0)


def test_a_saw_tooth_lag_within_one_trigger_is_sustainable() -> None:
    verdict = judge(simulated_step(5000, 7300))
    assert verdict.sustainable, verdict.reason


def test_lag_bound_is_ten_seconds_or_one_trigger() -> None:
    flat = [(float(t), 9000.0) for t in range(13)]
    assert judge(StepOutcome(1000, 12, 12_000, flat)).sustainable  # 9000 ≤ 1000 x 10 s
    behind = judge(StepOutcome(800, 12, 9_600, flat))  # 9000 > 800 x 10 s
    assert not behind.sustainable
    assert "behind" in behind.reason
    long_flat = [(float(t), 9000.0) for t in range(49)]
    assert judge(StepOutcome(800, 48, 38_400, long_flat), trigger_s=12.0).sustainable  # 9000 ≤ 800 x 12 s


def test_slow_batches_with_a_steady_saw_tooth_are_sustainable() -> None:
    # A batch every 3 s reading what arrived meanwhile: the trough is 3 s of readings, not growing.
    teeth = [(float(t), 1000.0 * (t % 3 + 3)) for t in range(31)]
    assert judge(StepOutcome(1000, 30, 30_000, teeth)).sustainable


def test_a_growing_lag_below_the_bound_is_not_sustainable() -> None:
    growing = [(float(t), 300.0 * t) for t in range(11)]  # 300/s of backlog, 3000 at the end
    verdict = judge(StepOutcome(5000, 10, 50_000, growing))
    assert not verdict.sustainable
    assert "growing" in verdict.reason


def test_early_growth_that_settles_is_sustainable() -> None:
    settling = [(float(t), min(t, 5) * 600.0) for t in range(21)]
    assert judge(StepOutcome(5000, 20, 100_000, settling)).sustainable


def test_a_publisher_short_of_the_rate_is_not_a_pipeline_result() -> None:
    verdict = judge(StepOutcome(10_000, 10, 90_000, [(0.0, 0.0), (10.0, 0.0)]))
    assert not verdict.sustainable
    assert "publisher" in verdict.reason


def test_no_lag_measured_is_not_sustainable() -> None:
    assert not judge(StepOutcome(10, 1, 10, [])).sustainable
    with pytest.raises(ValueError, match="positive"):
        judge(StepOutcome(0, 1, 0, []))


def test_a_step_shorter_than_four_triggers_is_refused() -> None:
    with pytest.raises(ValueError, match="4 triggers"):
        judge(StepOutcome(100, 3, 300, [(0.0, 0.0), (3.0, 0.0)]), trigger_s=1.0)


def test_rate_just_above_the_limit_fails_on_growth() -> None:
    verdict = judge(simulated_step(7500, 7300))  # 200/s of backlog: 2.7 % of the rate
    assert not verdict.sustainable
    assert "growing" in verdict.reason
