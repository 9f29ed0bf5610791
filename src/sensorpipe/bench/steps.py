"""`sensorpipe bench --max`: the highest rate the pipeline sustains, found by stepping the load.

A step offers one rate; it is sustainable when all three hold (`judge`):

1. the publisher really offered it: readings acknowledged by the broker ≥ 95 % of rate x publishing time
   (a rate the load generator cannot make says nothing about the pipeline);
2. the database landed it: the landing rate over the step's measured window (its warm-up left out) is
   ≥ 98 % of the offered rate. A pipeline that falls behind lands less than arrives, whatever shape its
   lag takes. The database's counter rises once per micro-batch, so the rate is the slope of a line
   through the window's micro-batch commits, each timed to a fifth of a second (`figures.landing_rate`):
   on a simulated pipeline with 1-1.5 s batches its spread is about 1 % over a 15-20 s window (0.5 %
   over 35 s), where the counter read once a second at the window's ends was off by up to a batch;
3. little is left over: the backlog at the step's end, the lowest Kafka lag of the step's last quarter (the
   trough just after a micro-batch committed, in readings), is below 2 s of readings at the offered rate.
   That trough is what arrived while the last micro-batch ran, so a job whose batches take 2 s or more
   is 2 s behind at best and fails here: the old rule let "10 s behind" pass, and with micro-batches of
   several seconds a short step showed one or two troughs, so a step landing two thirds of its rate was
   judged sustainable (issue 21). The lag is sampled once a second: the trough can be overstated by up to
   one second of readings on a single tooth, less over the several a last quarter holds.

A step lasts long enough to hold at least 10 micro-batches in its measured window (`step_length`, from
the trigger; the runner extends a step whose micro-batches ran slower than the trigger until its window
holds 10 of them, up to `EXTENSION_LIMIT` times its planned length).

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
LANDING_SHARE = 0.98
END_BACKLOG_S = 2.0
TOLERANCE = 0.10
MIN_BATCHES = 10
"""Micro-batches a step's measured window holds at least."""
WARMUP_LIMIT_S = 5.0
"""A step's warm-up, left out of its measured window: its first quarter, at most this long."""
EXTENSION_LIMIT = 4.0
"""The runner extends a step whose micro-batches ran slower than the trigger up to this multiple of its planned
length; a step that still holds fewer than MIN_BATCHES has batches of several seconds, which rule 3 refuses."""


def step_length(duration_s: float, trigger_s: float) -> float:
    """Seconds of load for a step: at least `duration_s`, and enough that the window left after the warm-up
    (a quarter of the step, at most WARMUP_LIMIT_S) spans MIN_BATCHES triggers."""
    if duration_s <= 0 or trigger_s <= 0:
        raise ValueError("a step needs a positive duration and trigger")
    window = MIN_BATCHES * trigger_s
    return max(duration_s, min(window + WARMUP_LIMIT_S, window * 4 / 3))


def measured_start(start: float, end: float) -> float:
    """Where the measured window of a step from `start` to `end` begins: after its warm-up."""
    return start + min(WARMUP_LIMIT_S, (end - start) / 4)


@dataclass(frozen=True)
class StepOutcome:
    """What one step measured: the rate asked for, what the broker acknowledged, the lag over time, and what
    landed in the database."""

    rate: float
    duration_s: float
    """How long the publisher published (its own clock)."""
    acknowledged: int
    lag: Sequence[Sample]
    """(seconds since the step started, Kafka lag of the readings query in readings), in time order, while the
    load ran."""
    landed: float
    """Readings/s the database took over the measured window (`figures.landing_rate`)."""


@dataclass(frozen=True)
class Verdict:
    """Whether a step was sustainable, with the figures it was judged on and the reason a person reads."""

    sustainable: bool
    reason: str
    landed: float
    """Readings/s landed over the measured window."""
    end_backlog: float | None
    """Readings not yet stored at the step's end (`end_backlog`); None when no lag was measured."""


def end_backlog(lag: Sequence[Sample]) -> float:
    """The lowest lag of the last quarter of `lag`'s span: what was left just after the last micro-batches
    committed (a single point could land anywhere on the saw-tooth the micro-batches make)."""
    start, end = lag[0][0], lag[-1][0]
    return min(v for t, v in lag if t >= end - (end - start) / 4)


def judge(step: StepOutcome, trigger_s: float = 1.0) -> Verdict:
    """Apply the module's three rules to one step. The reason names what failed and always gives the landing
    rate, so that a verdict is never printed without the figure it rests on."""
    if step.rate <= 0 or step.duration_s <= 0:
        raise ValueError("a step needs a positive rate and duration")
    offered = step.acknowledged / (step.rate * step.duration_s)
    share = step.landed / step.rate
    landed = f"landed {step.landed:,.0f}/s of {step.rate:,.0f}/s offered ({share * 100:.0f} %)"
    if not step.lag:
        return Verdict(False, f"no lag was measured; {landed}", step.landed, None)
    start, end = step.lag[0][0], step.lag[-1][0]
    if (end - start) / 4 < trigger_s:
        raise ValueError(f"a step of {end - start:g} s of lag samples is shorter than 4 triggers of {trigger_s:g} s")
    backlog = end_backlog(step.lag)
    left = f"backlog {backlog:,.0f} readings = {backlog / step.rate:.1f} s at the end"
    if offered < OFFERED_SHARE:
        reason = f"the publisher made only {offered * 100:.0f} % of the rate: the load generator is the limit"
        return Verdict(False, f"{reason}; {landed}; {left}", step.landed, backlog)
    failed = [
        text for text, bad in ((landed, share < LANDING_SHARE), (left, backlog >= END_BACKLOG_S * step.rate)) if bad
    ]
    if failed:
        if landed not in failed:
            failed.append(landed)
        if offered < LANDING_SHARE:
            failed.append(f"the publisher made {offered * 100:.0f} % of the rate")
        return Verdict(False, "; ".join(failed), step.landed, backlog)
    return Verdict(True, f"{landed}; {left}", step.landed, backlog)


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


__all__ = [
    "END_BACKLOG_S",
    "EXTENSION_LIMIT",
    "LANDING_SHARE",
    "MIN_BATCHES",
    "OFFERED_SHARE",
    "WARMUP_LIMIT_S",
    "RateSearch",
    "StepOutcome",
    "Verdict",
    "end_backlog",
    "judge",
    "measured_start",
    "step_length",
]
