"""The run sequence `run` and `bench` share, with stand-in children (tiny processes) and fake scrapes.

The children are short Python processes under the real supervisor; whether the bridge subscribed and
how many records the stream job has left to store are the test's answers, and a fake clock paces the
waits, so the order and the outcomes are checked without a stack.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sensorpipe.clients.backoff import Backoff
from sensorpipe.pipeline.launch import BRIDGE, SIMULATOR, STREAM
from sensorpipe.pipeline.sequence import Drain, RunSequence
from sensorpipe.pipeline.supervisor import ChildSpec, ChildState, Event, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
CRASHER = [sys.executable, "-c", "import sys; sys.exit(3)"]
T = TypeVar("T")


class Clock:
    """Time that passes only when the sequence sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answers(*values: T) -> Callable[[], T]:
    """A fake scrape: the given answers in turn, then the last one for ever."""
    left = list(values)

    def next_answer() -> T:
        return left.pop(0) if len(left) > 1 else left[0]

    return next_answer


class Pipeline:
    """The supervisor with stand-in children, a sequence on it and the events it reported."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        subscribed: Callable[[], bool | None] = lambda: True,
        simulator: bool = False,
        stream: list[str] = SLEEPER,
        real_time: bool = False,
    ) -> None:
        specs = [
            ChildSpec(STREAM, lambda: stream, stop_timeout_s=5),
            ChildSpec(BRIDGE, lambda: SLEEPER, stop_timeout_s=5),
        ]
        if simulator:
            specs.append(ChildSpec(SIMULATOR, lambda: SLEEPER, stop_timeout_s=5, finishes=True))
        self.supervisor = Supervisor(
            specs, tmp_path, backoff=lambda: Backoff(initial_s=0.01, max_s=0.02, rng=random.Random(0))
        )
        self.events: list[Event] = []
        self.clock = Clock()
        self.sequence = RunSequence(
            self.supervisor,
            subscribed=subscribed,
            report=self.events.append,
            clock=time.monotonic if real_time else self.clock,
            sleep=time.sleep if real_time else self.clock.sleep,
        )

    def said(self, kind: str | None = None) -> list[str]:
        return [f"{e.kind} {e.child}" for e in self.events if kind is None or e.kind == kind]


def test_the_stream_job_starts_before_the_bridge_and_a_cancelled_start_starts_nothing_more(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    try:
        pipeline.sequence.start()
        assert pipeline.said() == ["started stream", "started bridge"]
    finally:
        pipeline.supervisor.kill_all()

    cancelled = Pipeline(tmp_path / "cancelled")
    try:
        cancelled.sequence.start(cancelled=lambda: len(cancelled.events) >= 1)  # Ctrl+C while the job started
        assert cancelled.said() == ["started stream"]
        assert not cancelled.supervisor.running(BRIDGE)
    finally:
        cancelled.supervisor.kill_all()


def test_the_wait_for_the_subscription_lasts_until_the_broker_confirmed_it(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, subscribed=answers(False, False, True))
    turns: list[float] = []

    def turn() -> None:
        turns.append(pipeline.clock())

    try:
        assert not pipeline.sequence.bridge_subscribed(), "a bridge that does not run is not subscribed"
        pipeline.sequence.start()
        assert pipeline.sequence.wait_subscribed(turn, tick_s=0.2) is None
        assert len(turns) == 3
        assert pipeline.clock.sleeps == [0.2, 0.2], "one tick between two looks"
    finally:
        pipeline.supervisor.kill_all()


def test_a_bridge_without_metrics_counts_as_subscribed_once_it_runs(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, subscribed=lambda: None)
    try:
        assert not pipeline.sequence.bridge_subscribed()
        pipeline.sequence.start()
        assert pipeline.sequence.bridge_subscribed()
    finally:
        pipeline.supervisor.kill_all()


def test_the_callers_turn_ends_a_wait_with_its_reason(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, subscribed=lambda: False)
    try:
        pipeline.sequence.start()
        reasons = iter([None, None, "interrupted"])
        assert pipeline.sequence.wait_subscribed(lambda: next(reasons), tick_s=1.0) == "interrupted"
        reasons = iter([None, "duration reached"])
        assert pipeline.sequence.watch(lambda: next(reasons), tick_s=1.0) == "duration reached"
    finally:
        pipeline.supervisor.kill_all()


def test_the_drain_waits_until_every_record_is_stored_showing_what_is_left(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    shown: list[int | None] = []

    def waiting(left: int | None) -> bool:
        shown.append(left)
        return True

    try:
        pipeline.sequence.start()
        backlog: Callable[[], int | None] = answers(120, None, 7, 0)
        drained = pipeline.sequence.drain(backlog, waiting, timeout_s=60, tick_s=1.0)
        assert (drained.outcome, drained.left) == (Drain.STORED, 0)
        assert shown == [120, None, 7], "a backlog that cannot be read is the caller's to judge"
    finally:
        pipeline.supervisor.kill_all()


def test_the_drain_ends_when_the_caller_says_so_or_the_time_is_up(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    try:
        pipeline.sequence.start()
        unreadable = pipeline.sequence.drain(lambda: None, lambda left: left is not None, timeout_s=60, tick_s=1.0)
        assert (unreadable.outcome, unreadable.left) == (Drain.ENDED, None)
        began = pipeline.clock()
        late = pipeline.sequence.drain(lambda: 42, lambda _left: True, timeout_s=10, tick_s=1.0)
        assert (late.outcome, late.left) == (Drain.TIMED_OUT, 42)
        assert 10 < pipeline.clock() - began <= 12
    finally:
        pipeline.supervisor.kill_all()


def test_the_drain_ends_when_the_stream_job_keeps_crashing(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, stream=CRASHER, real_time=True)
    try:
        pipeline.sequence.start()
        drained = pipeline.sequence.drain(lambda: 5, lambda _left: True, timeout_s=60, tick_s=0.02)
        assert (drained.outcome, drained.left) == (Drain.GAVE_UP, 5)
        assert pipeline.said("gave_up") == ["gave_up stream"]
        assert "crashed stream" in pipeline.said() and "restarted stream" in pipeline.said()
    finally:
        pipeline.supervisor.kill_all()


def test_children_stop_producers_first_and_the_stream_job_drains_before_it_stops(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, simulator=True)
    steps: list[str] = []

    def drain() -> bool:
        steps.append("drain")
        assert not pipeline.supervisor.running(BRIDGE), "the bridge has stopped forwarding"
        assert pipeline.supervisor.running(STREAM)
        return True

    try:
        pipeline.sequence.start()
        pipeline.events.append(pipeline.supervisor.start(SIMULATOR))
        drained = pipeline.sequence.stop(drain=drain, stopping=lambda name: steps.append(f"stopping {name}"))
        assert drained is True
        assert steps == ["stopping simulator", "stopping bridge", "drain", "stopping stream"]
        assert pipeline.said("stopped") == ["stopped simulator", "stopped bridge", "stopped stream"]
        assert all(child.state is ChildState.STOPPED for child in pipeline.supervisor.children.values())
    finally:
        pipeline.supervisor.kill_all()


def test_no_drain_unless_asked_for_and_the_stream_job_is_up(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    try:
        pipeline.sequence.start()
        assert pipeline.sequence.stop() is None  # the bench: it drained after its last step
        assert pipeline.said("stopped") == ["stopped bridge", "stopped stream"]
    finally:
        pipeline.supervisor.kill_all()

    gone = Pipeline(tmp_path / "gone")
    try:
        gone.sequence.start()
        gone.supervisor.kill_all()  # the stream job is not up: nothing can drain
        assert gone.sequence.stop(drain=lambda: True) is None
    finally:
        gone.supervisor.kill_all()
