"""The pipeline's run sequence, written once for `sensorpipe run` and `sensorpipe bench`.

Start the stream job (its JVM takes longest), then the bridge; wait until the broker confirmed the
bridge's subscription, since a reading published before that has no subscriber and is gone; then the
load runs; before the stream job stops it stores everything the bridge forwarded (the drain); children
stop producers first (`STOP_ORDER`). What happens while the sequence waits (a live view, samples,
Ctrl+C, a deadline) is the caller's: each wait calls the caller's `turn` once per tick.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sensorpipe.config import Settings
from sensorpipe.pipeline.launch import BRIDGE, STOP_ORDER, STREAM, bridge_subscribed
from sensorpipe.pipeline.supervisor import ChildState, Event, Supervisor

Turn = Callable[[], str | None]
"""The caller's part of one tick of a wait: show progress, check its own conditions; a reason ends the wait."""


class Drain(StrEnum):
    STORED = "stored"
    """The stream job committed every record on the topic."""
    TIMED_OUT = "timed out"
    GAVE_UP = "gave up"
    """A child kept crashing and the supervisor gave up on it."""
    ENDED = "ended"
    """The caller ended the wait (say, because the backlog cannot be read)."""


@dataclass(frozen=True)
class Drained:
    outcome: Drain
    left: int | None
    """Records not stored when the wait ended (0 once stored; None: could not be read)."""


class RunSequence:
    """Start, wait for the bridge's subscription, drain and stop the children of `supervisor`, in that order.

    `subscribed` says whether the broker confirmed the bridge's subscriptions (None: cannot tell, its
    metrics are off); `report` shows each event of the children; `clock` and `sleep` pace the waits.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        subscribed: Callable[[], bool | None],
        report: Callable[[Event], None],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.supervisor = supervisor
        self._subscribed = subscribed
        self._report = report
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def for_settings(cls, settings: Settings, supervisor: Supervisor, report: Callable[[Event], None]) -> RunSequence:
        """The sequence of a pipeline run with `settings`: the bridge's subscription read from its metrics."""
        return cls(supervisor, subscribed=functools.partial(bridge_subscribed, settings), report=report)

    def start(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Stop what a killed run left behind, then start the stream job and the bridge (none once `cancelled`)."""
        for event in self.supervisor.stop_leftovers():
            self._report(event)
        for name in (STREAM, BRIDGE):
            if not cancelled():
                self._report(self.supervisor.start(name))

    def poll(self) -> bool:
        """Report what happened to the children (crashes, restarts); False once one was given up on."""
        for event in self.supervisor.poll():
            self._report(event)
        return not self.supervisor.gave_up

    def bridge_subscribed(self) -> bool:
        """Whether readings published now reach the bridge: it runs and the broker confirmed its subscriptions.

        With the bridge's metrics off nobody can tell: a running bridge counts as subscribed.
        """
        return self.supervisor.running(BRIDGE) and self._subscribed() is not False

    def wait_subscribed(self, turn: Turn, *, tick_s: float) -> str | None:
        """Tick until the bridge subscribed (None), or until `turn` gives a reason to stop waiting (that reason)."""
        while True:
            tick = self._clock()
            why = turn()
            if why is not None:
                return why
            if self.bridge_subscribed():
                return None
            self._rest(tick, tick_s)

    def watch(self, turn: Turn, *, tick_s: float) -> str:
        """Tick until `turn` gives a reason to stop: the run's time is up, Ctrl+C, a child given up on."""
        while True:
            tick = self._clock()
            why = turn()
            if why is not None:
                return why
            self._rest(tick, tick_s)

    def drain(
        self,
        backlog: Callable[[], int | None],
        waiting: Callable[[int | None], bool],
        *,
        timeout_s: float,
        tick_s: float,
    ) -> Drained:
        """Wait until the stream job committed every record on the topic, restarting it if it crashes meanwhile.

        `backlog` reads the records not yet stored (None: cannot be read); `waiting(left)` shows it
        each tick, and False from it ends the wait.
        """
        deadline = self._clock() + timeout_s
        while True:
            left = backlog()
            if left == 0:
                return Drained(Drain.STORED, 0)
            if not self.poll():
                return Drained(Drain.GAVE_UP, left)
            if not waiting(left):
                return Drained(Drain.ENDED, left)
            if self._clock() > deadline:
                return Drained(Drain.TIMED_OUT, left)
            self._sleep(tick_s)

    def stop(
        self, drain: Callable[[], bool] | None = None, stopping: Callable[[str], None] = lambda _name: None
    ) -> bool | None:
        """Stop the children in STOP_ORDER; `drain` runs before the stream job stops, if it is up.

        `stopping(name)` is called before each stop. Returns what `drain` returned (None: not run).
        """
        drained: bool | None = None
        for name in STOP_ORDER:
            child = self.supervisor.children.get(name)
            if child is None:
                continue
            if name == STREAM and drain is not None and child.state in {ChildState.RUNNING, ChildState.WAITING}:
                drained = drain()
            stopping(name)
            event = self.supervisor.stop(name)
            if event is not None:
                self._report(event)
        return drained

    def _rest(self, tick: float, tick_s: float) -> None:
        """Sleep what is left of the tick that began at `tick`."""
        self._sleep(max(tick_s - (self._clock() - tick), 0.0))


__all__ = ["Drain", "Drained", "RunSequence", "Turn"]
