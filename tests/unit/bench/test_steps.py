"""`sensorpipe bench --max`: the sustainability rule, the step length and the doubling-then-bisecting search."""

from __future__ import annotations

import pytest

from sensorpipe.bench.runner import trigger_seconds
from sensorpipe.bench.steps import (
    LANDING_SHARE,
    MIN_BATCHES,
    WARMUP_LIMIT_S,
    RateSearch,
    StepOutcome,
    end_backlog,
    judge,
    measured_start,
    step_length,
)


def simulated_step(rate: float, true_max: float, duration_s: float = 30.0, trigger_s: float = 1.0) -> StepOutcome:
    """A pipeline that drains at most `true_max` readings/s; its lag saw-tooths with the trigger."""
    backlog, points = 0.0, []
    for i in range(int(duration_s * 4) + 1):
        t = i / 4
        backlog = max(0.0, backlog + (rate - true_max) / 4) if i else 0.0
        tooth = rate * ((t % trigger_s) / trigger_s)  # what arrived since the last micro-batch started
        points.append((t, backlog + tooth))
    landed = min(rate, true_max)
    return StepOutcome(rate=rate, duration_s=duration_s, acknowledged=int(rate * duration_s), lag=points, landed=landed)


def flat(rate: float, lag: float, landed: float, seconds: int = 20) -> StepOutcome:
    """A step whose lag is `lag` readings throughout."""
    return StepOutcome(rate, seconds, int(rate * seconds), [(float(t), lag) for t in range(seconds + 1)], landed)


def search(true_max: float, start: float = 1000.0) -> RateSearch:
    s = RateSearch(start=start)
    while (rate := s.next_rate()) is not None:
        s.record(rate, judge(simulated_step(rate, true_max)).sustainable)
        assert len(s.steps) < 40
    return s


# --- the verdict ------------------------------------------------------------------------------------


def test_the_issue_step_landing_two_thirds_of_its_rate_is_not_sustainable() -> None:
    # 2026-12-07: 9,000/s offered, 5,965/s landed, troughs low enough for the old rule.
    verdict = judge(flat(9000, 9000 * 0.5, landed=5965))
    assert not verdict.sustainable
    assert verdict.reason == "landed 5,965/s of 9,000/s offered (66 %)"
    assert verdict.landed == 5965


def test_a_landing_rate_of_97_percent_is_refused_and_98_percent_passes() -> None:
    refused = judge(flat(10_000, 1000, landed=9700))
    assert not refused.sustainable
    assert "landed 9,700/s of 10,000/s offered (97 %)" in refused.reason
    passed = judge(flat(10_000, 1000, landed=10_000 * LANDING_SHARE))
    assert passed.sustainable, passed.reason
    assert passed.reason == "landed 9,800/s of 10,000/s offered (98 %); backlog 1,000 readings = 0.1 s at the end"


def test_a_backlog_of_2_5_seconds_at_the_end_is_refused() -> None:
    refused = judge(flat(9000, 2.5 * 9000, landed=9000))
    assert not refused.sustainable
    assert refused.reason == "backlog 22,500 readings = 2.5 s at the end; landed 9,000/s of 9,000/s offered (100 %)"
    assert refused.end_backlog == 22_500
    assert judge(flat(9000, 1.9 * 9000, landed=9000)).sustainable


def test_both_failures_are_named() -> None:
    verdict = judge(flat(3000, 12_400, landed=2000))
    assert verdict.reason == "landed 2,000/s of 3,000/s offered (67 %); backlog 12,400 readings = 4.1 s at the end"


def test_micro_batches_of_three_seconds_leave_three_seconds_behind() -> None:
    # A batch every 3 s reading what arrived meanwhile: the old rule's "steady saw-tooth", now too far behind.
    teeth = [(float(t), 1000.0 * (t % 3 + 3)) for t in range(31)]
    verdict = judge(StepOutcome(1000, 30, 30_000, teeth, landed=1000))
    assert not verdict.sustainable
    assert "= 3.0 s at the end" in verdict.reason


def test_the_end_backlog_is_the_last_quarters_trough() -> None:
    # Troughs of 500, 1,000, 1,500 ...: a single sample at the end (a peak) or the step's lowest (0) would mislead.
    lag = [(float(t), 500.0 * (t // 2) + (900.0 if t % 2 else 0.0)) for t in range(21)]
    assert end_backlog(lag) == 4000  # t = 16, the first trough of the last quarter (15 to 20 s)


def test_a_saw_tooth_lag_within_one_trigger_is_sustainable() -> None:
    verdict = judge(simulated_step(5000, 7300))
    assert verdict.sustainable, verdict.reason
    assert verdict.reason.startswith("landed 5,000/s of 5,000/s offered (100 %)")


def test_a_publisher_short_of_the_rate_is_not_a_pipeline_result() -> None:
    short = StepOutcome(10_000, 10, 90_000, [(0.0, 0.0), (10.0, 0.0)], landed=9000)
    verdict = judge(short)
    assert not verdict.sustainable
    assert verdict.reason.startswith("the publisher made only 90 % of the rate")
    assert "landed 9,000/s" in verdict.reason


def test_a_publisher_slightly_short_is_named_beside_the_landing_rate() -> None:
    verdict = judge(StepOutcome(10_000, 20, 192_000, [(float(t), 0.0) for t in range(21)], landed=9600))
    assert verdict.reason == "landed 9,600/s of 10,000/s offered (96 %); the publisher made 96 % of the rate"


def test_no_lag_measured_is_not_sustainable() -> None:
    verdict = judge(StepOutcome(10, 1, 10, [], landed=10))
    assert not verdict.sustainable
    assert "landed 10/s" in verdict.reason
    with pytest.raises(ValueError, match="positive"):
        judge(StepOutcome(0, 1, 0, [], landed=0))


def test_a_step_shorter_than_four_triggers_is_refused() -> None:
    with pytest.raises(ValueError, match="4 triggers"):
        judge(StepOutcome(100, 3, 300, [(0.0, 0.0), (3.0, 0.0)], landed=100), trigger_s=1.0)


def test_rate_just_above_the_limit_fails_on_landing() -> None:
    verdict = judge(simulated_step(7500, 7300))  # 97 % landed
    assert not verdict.sustainable
    assert "(97 %)" in verdict.reason


# --- the step length --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration_s", "trigger", "length_s"),
    [
        (20.0, "1 second", 20.0),  # 15 s measured: 15 triggers
        (8.0, "1 second", 40 / 3),  # 10 s measured after a quarter's warm-up
        (8.0, "500 milliseconds", 8.0),
        (20.0, "5 seconds", 55.0),  # 50 s measured after 5 s of warm-up
        (30.0, "2 seconds", 30.0),
    ],
)
def test_a_step_holds_ten_triggers_after_its_warm_up(duration_s: float, trigger: str, length_s: float) -> None:
    trigger_s = trigger_seconds(trigger)
    length = step_length(duration_s, trigger_s)
    assert length == pytest.approx(length_s)
    assert length >= duration_s
    assert length - measured_start(0.0, length) >= MIN_BATCHES * trigger_s - 1e-9


@pytest.mark.parametrize("trigger_s", [0.1, 0.5, 1.0, 1.4, 1.5, 1.6, 3.0, 10.0, 60.0])
def test_the_step_length_is_the_shortest_that_holds_ten_triggers(trigger_s: float) -> None:
    length = step_length(1.0, trigger_s)
    assert length - measured_start(0.0, length) == pytest.approx(MIN_BATCHES * trigger_s)


def test_the_warm_up_is_a_quarter_at_most_five_seconds() -> None:
    assert measured_start(10.0, 18.0) == 12.0
    assert measured_start(10.0, 70.0) == 10.0 + WARMUP_LIMIT_S
    with pytest.raises(ValueError, match="positive"):
        step_length(20.0, 0.0)


# --- the search -------------------------------------------------------------------------------------


def test_converges_on_a_system_that_sustains_7300_per_second() -> None:
    s = search(7300)
    assert [r for r, _ in s.steps] == [1000, 2000, 4000, 8000, 6000, 7000, 7500]
    assert s.best == 7000
    assert s.done


@pytest.mark.parametrize("true_max", [150.0, 999.0, 1000.0, 3333.0, 7300.0, 12_345.0, 64_000.0, 500_000.0])
def test_result_is_measured_sustainable_and_within_ten_percent(true_max: float) -> None:
    s = search(true_max)
    assert s.best is not None
    assert true_max / 1.1 <= s.best <= true_max / LANDING_SHARE  # the rule's documented resolution


def test_start_above_the_limit_halves_first() -> None:
    s = search(300, start=1000)
    assert [r for r, _ in s.steps][:3] == [1000, 500, 250]
    assert s.best is not None and 300 / 1.1 <= s.best <= 300 / LANDING_SHARE


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
