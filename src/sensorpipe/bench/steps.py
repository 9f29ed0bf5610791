"""`sensorpipe bench --max`: the highest rate the pipeline sustains, found by stepping the load.

A step offers one rate for a fixed time. It is sustainable when all three hold (`judge`):

1. the publisher really offered it: readings acknowledged by the broker ≥ 95 % of rate x duration (a rate
   the load generator cannot make says nothing about the pipeline, and going higher would not help);
2. the Kafka lag is bounded: its lowest value in the step's last quarter is ≤ rate x max(10 s, one trigger
   interval). That trough is what arrived while the micro-batch before it ran; a job whose batches take
   several seconds (one reading per Kafka record on two cores: 2-4 s) still keeps up, and how long a
   reading waits is the latency target's business, not this rule's. What it refuses is a step that
   ends more than 10 s behind;
3. the lag is not growing: the lowest lag of the step's last quarter exceeds the lowest lag of its third
   quarter by at most 2 % of the rate per second (the pipeline drains at least 98 % of what arrives). The
   lag is a saw-tooth with the trigger's period (it climbs while a micro-batch collects and drops when the
   next one reads); its troughs are the real backlog, so troughs are compared, not end against middle
   (two single points can land anywhere on a tooth) nor a fitted slope (which the teeth bias). Each
   quarter must span at least one trigger: steps shorter than 4 triggers are refused. The first half is
   left out: it holds the ramp-up and the first micro-batches.

Rule 3 is the resolution of the measurement: a rate up to 2 % above what the pipeline drains can pass a
finite step. A lower tolerance would make trigger jitter fail good steps.

The search (`RateSearch`): from a start rate, double after every sustainable step until the first
unsustainable one; then bisect between the last sustainable and the first unsustainable rate until they
are within 10 % of each other (bad ≤ good x 1.10). If the very first step fails, halve instead until one
passes, then bisect the same way. The result is the highest rate that was measured sustainable (never an
interpolated one), so it is at most 10 % below the true limit. The search also stops at `max_rate`
(sustainable there: the result is `max_rate`) and at `min_rate` (nothing sustainable: the result is None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sensorpipe.bench.stats import Sample

OFFERED_SHARE = 0.95
LAG_FLOOR_S = 10.0
GROWTH_TOLERANCE = 0.02
TOLERANCE = 0.10


@dataclass(frozen=True)
class StepOutcome:
    """What one step measured: the rate asked for, what the broker acknowledged, and the lag over time."""

    rate: float
    duration_s: float
    acknowledged: int
    lag: Sequence[Sample]
    """(seconds since the step started, Kafka lag of the readings query in records), in time order."""


@dataclass(frozen=True)
class Verdict:
    """Whether a step was sustainable, and the reason a person reads when it was not."""

    sustainable: bool
    reason: str


def judge(step: StepOutcome, trigger_s: float = 1.0) -> Verdict:
    """Apply the module's three rules to one step."""
    if step.rate <= 0 or step.duration_s <= 0:
        raise ValueError("a step needs a positive rate and duration")
    offered = step.acknowledged / (step.rate * step.duration_s)
    if offered < OFFERED_SHARE:
        return Verdict(False, f"the publisher made only {offered:.0%} of the rate: the load generator is the limit")
    if not step.lag:
        return Verdict(False, "no lag was measured")
    start, end = step.lag[0][0], step.lag[-1][0]
    quarter = (end - start) / 4
    if quarter < trigger_s:
        raise ValueError(f"a step of {end - start:g} s of lag samples is shorter than 4 triggers of {trigger_s:g} s")
    third = [v for t, v in step.lag if start + 2 * quarter <= t < start + 3 * quarter]
    last = [v for t, v in step.lag if t >= start + 3 * quarter]
    floor_s = max(LAG_FLOOR_S, trigger_s)
    if min(last) > step.rate * floor_s:
        return Verdict(False, f"lag never below {min(last):.0f} at the end: more than {floor_s:g} s of readings behind")
    growth = (min(last) - min(third, default=min(last))) / quarter
    if growth > GROWTH_TOLERANCE * step.rate:
        return Verdict(False, f"lag growing by {growth:.0f}/s at the end (> {GROWTH_TOLERANCE:.0%} of the rate)")
    return Verdict(True, "lag bounded and not growing")


@dataclass
class RateSearch:
    """Proposes the next rate from the previous steps' verdicts; `best` is the answer once `done`.

    Use: `while (rate := search.next_rate()) is not None: search.record(rate, judge(run(rate)).sustainable)`.
    """

    start: float
    max_rate: float = 10_000_000.0
    min_rate: float = 1.0
    tolerance: float = TOLERANCE
    steps: list[tuple[float, bool]] = field(default_factory=list)
    """Every (rate, sustainable) measured, in order: the report shows them."""

    def __post_init__(self) -> None:
        if not 0 < self.min_rate <= self.start <= self.max_rate:
            raise ValueError("need 0 < min_rate ≤ start ≤ max_rate")
        if self.tolerance <= 0:
            raise ValueError("the tolerance must be positive")

    @property
    def best(self) -> float | None:
        """The highest rate measured sustainable so far."""
        return max((r for r, ok in self.steps if ok), default=None)

    @property
    def first_bad(self) -> float | None:
        """The lowest rate measured unsustainable so far."""
        return min((r for r, ok in self.steps if not ok), default=None)

    def record(self, rate: float, sustainable: bool) -> None:
        self.steps.append((rate, sustainable))

    @property
    def done(self) -> bool:
        return self.next_rate() is None

    def next_rate(self) -> float | None:
        """The next rate to offer, or None when the search is over."""
        good, bad = self.best, self.first_bad
        if not self.steps:
            return self.start
        if good is None:  # nothing sustainable yet: halve from the lowest failure
            assert bad is not None
            lower = bad / 2
            return None if lower < self.min_rate else lower
        if bad is None:  # everything so far sustainable: double, up to max_rate
            if good >= self.max_rate:
                return None
            return min(good * 2, self.max_rate)
        if bad <= good * (1 + self.tolerance):
            return None
        return (good + bad) / 2


__all__ = ["RateSearch", "StepOutcome", "Verdict", "judge"]
