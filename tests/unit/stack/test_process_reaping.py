"""A spawned child's exit code belongs to whoever spawned it, whatever else in the process starts children."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sensorpipe.stack.process import PidFile, exit_code, spawn


def test_another_popen_in_the_process_does_not_reap_a_spawned_child(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(3)"]
    pid = spawn(command, log_file=tmp_path / "child.log", pid_file=PidFile(tmp_path / "child.pid"))
    time.sleep(1.0)  # the child has ended and waits to be reaped
    subprocess.run(["true"], check=True)  # any Popen reaps the children of collected Popen objects
    assert exit_code(pid) == 3


def test_an_ended_child_is_reaped_at_the_next_spawn_and_keeps_its_exit_code(tmp_path: Path) -> None:
    first = spawn(
        [sys.executable, "-c", "raise SystemExit(5)"], log_file=tmp_path / "a.log", pid_file=PidFile(tmp_path / "a.pid")
    )
    time.sleep(1.0)
    assert Path(f"/proc/{first}").exists()  # a zombie: its pid still taken (PostgreSQL's lock file would think so)
    second = spawn([sys.executable, "-c", "pass"], log_file=tmp_path / "b.log", pid_file=PidFile(tmp_path / "b.pid"))
    assert not Path(f"/proc/{first}").exists()
    assert exit_code(first) == 5
    time.sleep(1.0)
    assert exit_code(second) == 0
