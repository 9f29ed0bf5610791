"""Supervise the pipeline's processes for `sensorpipe run`: start, restart after a crash, stop in order.

Each child leads a process group of its own (the stream job's JVM and Python workers are in it), so a
terminal's Ctrl+C reaches only `run`, which then stops the children in the order that loses nothing.
A crashed child is restarted after a jittered, growing delay; one that keeps crashing right after its
start is given up on, since restarting a misconfigured process forever only hides the cause.
Pid files (with the process's start time) under `<home>/run/` let the next `run` stop what a killed
`run` left behind, and never another process that later reused a pid.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sensorpipe.clients.backoff import Backoff
from sensorpipe.stack.process import PidFile, exit_code, log_tail, spawn, terminate

STABLE_AFTER_S = 60.0
"""A child that ran this long before crashing was healthy: its restart delay starts over."""
QUICK_CRASHES = 5
"""Crashes in a row, each sooner than STABLE_AFTER_S after its start, before the supervisor gives up."""
LOG_LINES = 8
"""Last lines of a crashed child's log shown with the crash."""


class ChildState(StrEnum):
    RUNNING = "running"
    WAITING = "restarting"
    """Crashed; restarts at `Child.restart_at`."""
    FINISHED = "finished"
    """Ended on its own with exit code 0, as a child that `finishes` may (the simulator after --duration)."""
    STOPPED = "stopped"
    GAVE_UP = "gave up"


@dataclass(frozen=True)
class ChildSpec:
    name: str
    command: Callable[[], list[str]]
    """Built at each start, so a restart can pick up where the last one stopped (time left, say)."""
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 30.0
    """Time to finish cleanly after `stop_signal` before SIGKILL."""
    finishes: bool = False
    """Exit code 0 means done, not a crash."""
    signal_group: bool = True
    """Send `stop_signal` to the whole process group; False: to the child alone, which stops its group in order."""


@dataclass(frozen=True)
class Event:
    """Something that happened to a child, worded for the user: one line each."""

    child: str
    kind: str
    message: str
    at: float = field(default_factory=time.time)


@dataclass
class Child:
    spec: ChildSpec
    log_file: Path
    pid_file: PidFile
    backoff: Backoff
    state: ChildState = ChildState.STOPPED
    pid: int | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_crashes: int = 0
    last_exit: int | None = None
    restart_at: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name


def describe_exit(code: int) -> str:
    """`exit code 1`, or `killed by SIGKILL` for a negative code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """The children of one `run`, by name; single-threaded: `poll` from the loop that shows them."""

    def __init__(
        self,
        specs: list[ChildSpec],
        home: Path,
        *,
        env: Mapping[str, str] | None = None,
        backoff: Callable[[], Backoff] = lambda: Backoff(initial_s=1.0, max_s=30.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.env = dict(env if env is not None else os.environ)
        self.clock = clock
        self.children = {
            spec.name: Child(
                spec,
                log_file=home / "logs" / f"{spec.name}.log",
                pid_file=PidFile(home / "run" / f"{spec.name}.pid"),
                backoff=backoff(),
            )
            for spec in specs
        }

    def stop_leftovers(self) -> list[Event]:
        """Stop children a killed `run` left running (their pid files still name them)."""
        events = []
        for child in self.children.values():
            pid = child.pid_file.running_pid()
            if pid is not None:
                spec = child.spec
                terminate(pid, sig=spec.stop_signal, timeout_s=spec.stop_timeout_s, group=spec.signal_group)
                events.append(Event(child.name, "leftover", f"stopped {child.name} (pid {pid}) left by an earlier run"))
            child.pid_file.remove()
        return events

    def start(self, name: str) -> Event:
        child = self.children[name]
        child.log_file.parent.mkdir(parents=True, exist_ok=True)
        with child.log_file.open("a") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} sensorpipe run starts {name} ---\n")
        child.pid = spawn(child.spec.command(), log_file=child.log_file, pid_file=child.pid_file, env=self.env)
        child.state = ChildState.RUNNING
        child.started_at = self.clock()
        return Event(name, "started", f"{name} started (pid {child.pid}), log {child.log_file}")

    def running(self, name: str) -> bool:
        return self.children[name].state is ChildState.RUNNING

    @property
    def gave_up(self) -> list[Child]:
        return [c for c in self.children.values() if c.state is ChildState.GAVE_UP]

    def poll(self) -> list[Event]:
        """Notice children that ended, schedule their restarts, and start those that are due."""
        events: list[Event] = []
        now = self.clock()
        for child in self.children.values():
            if child.state is ChildState.RUNNING and child.pid is not None:
                code = exit_code(child.pid)
                if code is not None:
                    events.append(self._ended(child, code, now))
            if child.state is ChildState.WAITING and now >= child.restart_at:
                child.restarts += 1
                started = self.start(child.name)
                events.append(Event(child.name, "restarted", f"{started.message} (restart {child.restarts})"))
        return events

    def _ended(self, child: Child, code: int, now: float) -> Event:
        assert child.pid is not None
        terminate(child.pid, sig=signal.SIGKILL, timeout_s=0)  # what the child left in its group (a JVM)
        child.pid_file.remove()
        child.last_exit = code
        if code == 0 and child.spec.finishes:
            child.state = ChildState.FINISHED
            return Event(child.name, "finished", f"{child.name} finished")
        ran_s = now - child.started_at
        if ran_s >= STABLE_AFTER_S:
            child.backoff.reset()
            child.quick_crashes = 0
        child.quick_crashes += 1
        how = f"{child.name} exited unexpectedly ({describe_exit(code)}) after {ran_s:.0f} s"
        log = "\n".join(f"    {line}" for line in log_tail(child.log_file, LOG_LINES))
        if child.quick_crashes >= QUICK_CRASHES:
            child.state = ChildState.GAVE_UP
            return Event(
                child.name,
                "gave_up",
                f"{how}, {child.quick_crashes} times in a row within {STABLE_AFTER_S:.0f} s of starting: not"
                f" restarting it. Read {child.log_file} (last lines below), fix the cause (`sensorpipe doctor`"
                f" checks the environment) and run again\n{log}",
            )
        delay = child.backoff.next_delay()
        child.state = ChildState.WAITING
        child.restart_at = now + delay
        return Event(child.name, "crashed", f"{how}; restarting it in {delay:.1f} s. Last lines of its log:\n{log}")

    def stop(self, name: str) -> Event | None:
        """Stop one child cleanly (its stop signal, then SIGKILL after its timeout); None if it was not running."""
        child = self.children[name]
        was = child.state
        child.state = ChildState.STOPPED if was is not ChildState.FINISHED else was
        if was is not ChildState.RUNNING or child.pid is None:
            return None
        code = exit_code(child.pid)
        if code is not None:
            terminate(child.pid, sig=signal.SIGKILL, timeout_s=0)
            child.pid_file.remove()
            child.last_exit = code
            return Event(name, "stopped", f"{name} had already ended ({describe_exit(code)})")
        began = self.clock()
        spec = child.spec
        clean = terminate(child.pid, sig=spec.stop_signal, timeout_s=spec.stop_timeout_s, group=spec.signal_group)
        child.pid_file.remove()
        if clean:
            return Event(name, "stopped", f"{name} stopped ({self.clock() - began:.1f} s)")
        return Event(
            name,
            "killed",
            f"{name} did not stop within {child.spec.stop_timeout_s:.0f} s of {child.spec.stop_signal.name}:"
            f" killed it (read {child.log_file})",
        )

    def kill_all(self) -> list[Event]:
        """SIGKILL every child still running: the second Ctrl+C, or a `run` that failed."""
        events = []
        for child in self.children.values():
            if child.state is ChildState.RUNNING and child.pid is not None:
                terminate(child.pid, sig=signal.SIGKILL, timeout_s=0)
                child.pid_file.remove()
                events.append(Event(child.name, "killed", f"{child.name} killed"))
            if child.state is not ChildState.FINISHED:
                child.state = ChildState.STOPPED
        return events


__all__ = ["Child", "ChildSpec", "ChildState", "Event", "Supervisor", "describe_exit"]
