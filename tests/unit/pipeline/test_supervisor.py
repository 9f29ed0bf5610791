"""`run`'s supervisor with real (tiny) child processes: crashes, restarts, giving up, stopping, leftovers."""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from sensorpipe.clients.backoff import Backoff
from sensorpipe.pipeline.supervisor import QUICK_CRASHES, ChildSpec, ChildState, Event, Supervisor, describe_exit
from sensorpipe.stack.process import PidFile, group_members, spawn


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def quick() -> Backoff:
    return Backoff(initial_s=0.01, max_s=0.05, rng=random.Random(0))


def poll_until(supervisor: Supervisor, done: object, timeout_s: float = 20.0) -> list[Event]:
    """Poll like `run`'s loop does until `done(events so far)` is true."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout_s
    while not done(events):  # type: ignore[operator]
        assert time.monotonic() < deadline, [e.message for e in events]
        events += supervisor.poll()
        time.sleep(0.05)
    return events


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def test_a_crashed_child_is_restarted_and_the_restart_reported_with_its_log(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    code = f"import pathlib,sys; p=pathlib.Path({str(marker)!r}); n=len(p.read_text()) if p.exists() else 0;"
    code += " p.write_text('x'*(n+1)); print('run', n+1, 'failing on purpose', flush=True);"
    code += " sys.exit(3) if n == 0 else __import__('time').sleep(60)"
    supervisor = Supervisor([ChildSpec("bridge", lambda: python(code))], tmp_path, backoff=quick)
    started = supervisor.start("bridge")
    assert started.kind == "started" and "log " in started.message
    events = poll_until(supervisor, lambda es: any(e.kind == "restarted" for e in es))
    crash = next(e for e in events if e.kind == "crashed")
    assert "bridge exited unexpectedly (exit code 3)" in crash.message
    assert "restarting it in" in crash.message
    assert "run 1 failing on purpose" in crash.message  # the last lines of its log come with it
    child = supervisor.children["bridge"]
    assert child.restarts == 1 and child.state is ChildState.RUNNING and child.last_exit == 3
    deadline = time.monotonic() + 10
    while marker.read_text() != "xx" and time.monotonic() < deadline:  # the restarted child is running, not done
        time.sleep(0.05)
    assert marker.read_text() == "xx"
    stopped = supervisor.stop("bridge")
    assert stopped is not None and stopped.kind == "stopped"
    assert child.pid is not None and not alive(child.pid)
    assert not child.pid_file.path.exists()


def test_a_child_that_finishes_is_not_restarted(tmp_path: Path) -> None:
    spec = ChildSpec("simulator", lambda: python("print('done')"), finishes=True)
    supervisor = Supervisor([spec], tmp_path, backoff=quick)
    supervisor.start("simulator")
    events = poll_until(supervisor, lambda es: any(e.kind == "finished" for e in es))
    assert [e.kind for e in events] == ["finished"]
    time.sleep(0.1)
    assert supervisor.poll() == []
    assert supervisor.children["simulator"].state is ChildState.FINISHED
    assert supervisor.stop("simulator") is None


def test_exit_code_zero_of_a_service_is_a_crash(tmp_path: Path) -> None:
    supervisor = Supervisor([ChildSpec("bridge", lambda: python("pass"))], tmp_path, backoff=quick)
    supervisor.start("bridge")
    events = poll_until(supervisor, lambda es: any(e.kind == "crashed" for e in es))
    assert "exited unexpectedly (exit code 0)" in events[0].message


def test_a_child_crashing_at_every_start_is_given_up_on_with_the_cause(tmp_path: Path) -> None:
    code = "import sys; print('stream.checkpoint_base is not writable', file=sys.stderr); sys.exit(1)"
    supervisor = Supervisor([ChildSpec("stream", lambda: python(code))], tmp_path, backoff=quick)
    supervisor.start("stream")
    events = poll_until(supervisor, lambda es: any(e.kind == "gave_up" for e in es))
    assert [e.kind for e in events].count("crashed") == QUICK_CRASHES - 1
    gave_up = events[-1]
    assert f"{QUICK_CRASHES} times in a row" in gave_up.message
    assert "not restarting it" in gave_up.message and "`sensorpipe doctor`" in gave_up.message
    assert "stream.checkpoint_base is not writable" in gave_up.message
    assert [c.name for c in supervisor.gave_up] == ["stream"]
    assert supervisor.children["stream"].restarts == QUICK_CRASHES - 1


def test_what_a_crashed_child_left_in_its_group_is_killed_before_the_restart(tmp_path: Path) -> None:
    orphan_pid = tmp_path / "orphan.pid"
    code = (
        "import subprocess,sys,pathlib; "
        "p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); "
        f"pathlib.Path({str(orphan_pid)!r}).write_text(str(p.pid)); sys.exit(1)"
    )
    supervisor = Supervisor([ChildSpec("stream", lambda: python(code))], tmp_path, backoff=quick)
    supervisor.start("stream")
    poll_until(supervisor, lambda es: any(e.kind == "crashed" for e in es))
    assert not alive(int(orphan_pid.read_text()))


def test_stop_is_polite_first_and_kills_a_child_that_ignores_it(tmp_path: Path) -> None:
    polite = tmp_path / "polite"
    handler = (
        f"import signal,sys,time,pathlib\n"
        f"def bye(*_):\n    pathlib.Path({str(polite)!r}).write_text('clean'); sys.exit(0)\n"
        f"signal.signal(signal.SIGTERM, bye)\nprint('ready', flush=True)\ntime.sleep(60)\n"
    )
    deaf = (
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    supervisor = Supervisor(
        [ChildSpec("bridge", lambda: python(handler)), ChildSpec("stream", lambda: python(deaf), stop_timeout_s=0.5)],
        tmp_path,
    )
    for name in ("bridge", "stream"):
        supervisor.start(name)
    for name in ("bridge", "stream"):
        log = supervisor.children[name].log_file
        deadline = time.monotonic() + 10
        while "ready" not in log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    bridge, stream = supervisor.stop("bridge"), supervisor.stop("stream")
    assert bridge is not None and bridge.kind == "stopped" and polite.read_text() == "clean"
    assert stream is not None and stream.kind == "killed"
    assert "did not stop within 0 s of SIGTERM: killed it" in stream.message


def test_the_stop_signal_can_go_to_the_child_alone(tmp_path: Path) -> None:
    """The stream job's JVM must not get SIGTERM (it would shut Spark down mid-batch); the driver stops it."""
    seen = tmp_path / "seen"
    helper = tmp_path / "helper.py"
    helper.write_text(
        "import pathlib, signal, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: pathlib.Path({str(seen)!r}).write_text('helper got SIGTERM'))\n"
        f"pathlib.Path({str(tmp_path / 'helper-ready')!r}).touch()\n"
        "time.sleep(60)\n"
    )
    code = (
        "import signal, subprocess, sys, time\n"
        f"helper = subprocess.Popen([sys.executable, {str(helper)!r}])\n"
        "def bye(*_):\n    time.sleep(0.5); helper.kill(); helper.wait(); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\nprint('ready', flush=True)\ntime.sleep(60)\n"
    )
    supervisor = Supervisor([ChildSpec("stream", lambda: python(code), signal_group=False)], tmp_path)
    supervisor.start("stream")
    deadline = time.monotonic() + 10
    while not (tmp_path / "helper-ready").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    event = supervisor.stop("stream")
    assert event is not None and event.kind == "stopped"
    assert not seen.exists()


def test_children_left_by_a_killed_run_are_stopped_by_the_next(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "run" / "bridge.pid")
    pid = spawn(python("import time; time.sleep(60)"), log_file=tmp_path / "old.log", pid_file=pid_file)
    supervisor = Supervisor([ChildSpec("bridge", lambda: python("pass"))], tmp_path)
    events = supervisor.stop_leftovers()
    assert [e.message for e in events] == [f"stopped bridge (pid {pid}) left by an earlier run"]
    deadline = time.monotonic() + 5
    while group_members(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert supervisor.stop_leftovers() == []


def test_kill_all_leaves_nothing(tmp_path: Path) -> None:
    sleeper = python("import time; time.sleep(60)")
    supervisor = Supervisor([ChildSpec(n, lambda: sleeper) for n in ("a", "b")], tmp_path)
    pids = []
    for name in ("a", "b"):
        supervisor.start(name)
        pids.append(supervisor.children[name].pid)
    events = supervisor.kill_all()
    assert [e.message for e in events] == ["a killed", "b killed"]
    assert not any(alive(pid) for pid in pids if pid is not None)


@pytest.mark.parametrize(
    ("code", "text"),
    [(1, "exit code 1"), (-signal.SIGKILL, "killed by SIGKILL"), (-signal.SIGTERM, "killed by SIGTERM")],
)
def test_exit_codes_are_worded(code: int, text: str) -> None:
    assert describe_exit(code) == text
