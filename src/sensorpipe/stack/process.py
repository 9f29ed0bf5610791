"""Start, recognise and stop the processes of the local stack through pid files.

A pid file records the pid and the kernel's start time of the process, so that `stack down`
stops exactly the process `stack up` started and never one that later reused its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorpipe.errors import SensorpipeError


class ProcessError(SensorpipeError):
    """A process of the stack could not be started or stopped."""


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, list[str]] | None:
    """/proc/<pid>/stat as (command name, the fields after it); None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    return head.partition("(")[2], rest.split()


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]; None when the process is gone."""
    stat = _stat(pid)
    return stat[1] if stat else None


def _cpu(fields: list[str]) -> float:
    """utime + stime + cutime + cstime of stat fields, in seconds."""
    return sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS


def _start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), None if gone."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


@dataclass(frozen=True)
class PidFile:
    path: Path

    def read(self) -> dict[str, int] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and "pid" in data else None

    def running_pid(self) -> int | None:
        """The pid this file names if that very process is still alive (not a zombie, not a reused pid)."""
        data = self.read()
        if data is None:
            return None
        pid = int(data["pid"])
        if _start_ticks(pid) != data.get("start_ticks") or _is_zombie(pid):
            return None
        return pid

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": pid, "start_ticks": _start_ticks(pid)}))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _is_zombie(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is None or fields[0] == "Z"


def spawn(
    command: list[str],
    *,
    log_file: Path,
    pid_file: PidFile,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start `command` detached in its own session, output appended to `log_file`; returns its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    run_as: dict[str, Any] = {}
    if user is not None:
        account = pwd.getpwnam(user)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env = {**(env or os.environ), "HOME": account.pw_dir, "USER": user}
    for child in _CHILDREN.values():
        # Reap the children that ended, keeping their codes: a zombie keeps its pid alive to `kill(pid, 0)`,
        # and PostgreSQL started again would take its lock file for a running server's.
        child.poll()
    with log_file.open("ab") as log:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
                **run_as,
            )
        except OSError as e:
            raise ProcessError(f"could not run {command[0]}: {e}") from e
    pid: int = process.pid
    _CHILDREN[pid] = process
    pid_file.write(pid)
    return pid


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""The children `spawn` started whose exit code nobody asked for yet, each with its Popen kept alive. A Popen
collected while its child runs joins `subprocess`'s list of children to reap, and the next Popen anywhere in
this process reaps the child and drops its exit code: `run`'s supervisor then found no child to wait for
(`ChildProcessError: No child processes`, seen in its unit test). `spawn` reaps those that ended (their
Popen keeps the code)."""


def _reaped(pid: int) -> int | None:
    """The exit code of our spawned child `pid` once it ended (reaping it), None while it runs."""
    code = _CHILDREN[pid].poll()
    if code is not None:
        del _CHILDREN[pid]
    return code


def exited(pid: int) -> bool:
    """True once `pid` is gone; reaps it when it is our child so it does not linger as a zombie."""
    if pid in _CHILDREN:
        return _reaped(pid) is not None
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return True
    except ChildProcessError:
        pass
    return _start_ticks(pid) is None or _is_zombie(pid)


def exit_code(child: int) -> int | None:
    """Our child's exit code once it ended (negative: the signal that killed it), None while it runs.

    Reaps it: call this before `exited` or `terminate`, which would reap it and drop the code.
    """
    if child in _CHILDREN:
        return _reaped(child)
    done, status = os.waitpid(child, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done == child else None


def stop(pid_file: PidFile, *, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> bool:
    """Stop the process the pid file names and its children, politely then with SIGKILL.

    Returns False if it was not running. See `terminate`.
    """
    pid = pid_file.running_pid()
    if pid is None:
        pid_file.remove()
        return False
    terminate(pid, sig=sig, timeout_s=timeout_s)
    pid_file.remove()
    return True


def terminate(pid: int, *, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0, group: bool = True) -> bool:
    """Send `sig` to the process group `pid` leads (or, `group=False`, to `pid` alone, which then stops the
    rest in its own way), then SIGKILL whatever is left of the group after `timeout_s`.

    Returns True when the group ended on `sig` alone. Returns once no process of the group is left;
    raises ProcessError if one survives SIGKILL for 10 s (stuck in the kernel), rather than hang.
    """
    if group:
        _signal_group(pid, sig)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (exited(pid) and not group_members(pid)):
        time.sleep(0.1)
    if exited(pid) and not group_members(pid):
        return True
    _signal_group(pid, signal.SIGKILL)
    killed_by = time.monotonic() + 10
    while not exited(pid) or group_members(pid):
        if time.monotonic() > killed_by:
            raise ProcessError(f"pid {pid} and its group survive SIGKILL: {group_members(pid)}")
        time.sleep(0.05)
    return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Our services lead their own session (spawned with start_new_session), so signal the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (field 5 of /proc/<pid>/stat), zombies excluded."""
    members = []
    for proc in Path("/proc").iterdir():
        fields = stat_fields(int(proc.name)) if proc.name.isdigit() else None
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(proc.name))
    return members


def log_tail(path: Path, lines: int = 15) -> list[str]:
    """The last `lines` non-empty lines of a log, [] when there is none: what a crash report shows."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _kib_field(path: str, field: str) -> int:
    """A `Name:   123 kB` line of a /proc file, in bytes; 0 when the file or the line is not there."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (VmRSS), 0 when it is gone."""
    return _kib_field(f"/proc/{pid}/status", "VmRSS:")


def pss_bytes(pid: int) -> int:
    """Proportional resident memory of one process: shared pages split among the processes mapping them.

    Summed over processes it is the memory they really hold together, where RSS counts PostgreSQL's shared
    buffers once per backend and a forked worker's inherited pages twice. 0 when the process is gone.
    """
    return _kib_field(f"/proc/{pid}/smaps_rollup", "Pss:")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, with its exited children it waited for; 0 if gone."""
    fields = stat_fields(pid)
    return _cpu(fields) if fields else 0.0


@dataclass(frozen=True)
class ProcessSnapshot:
    """Every live process at one moment, /proc read once: its parent, command name and CPU time so far.

    For benchmarks that sample several process trees many times a second: one pass over /proc per sample.
    """

    parent: dict[int, int]
    command: dict[int, str]
    cpu: dict[int, float]

    @classmethod
    def take(cls) -> ProcessSnapshot:
        parent, command, cpu = {}, {}, {}
        for proc in Path("/proc").iterdir():
            stat = _stat(int(proc.name)) if proc.name.isdigit() else None
            if stat and stat[1][0] != "Z":
                pid, (name, fields) = int(proc.name), stat
                parent[pid], command[pid], cpu[pid] = int(fields[1]), name, _cpu(fields)
        return cls(parent, command, cpu)

    def descendants(self, pid: int) -> list[int]:
        """Live processes under `pid` (children, their children, ...)."""
        children: dict[int, list[int]] = {}
        for child, parent in self.parent.items():
            children.setdefault(parent, []).append(child)
        found, todo = [], [pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def tree_cpu_seconds(self, pid: int) -> float:
        """CPU time `pid` and everything it started have used so far, exited processes included.

        By tree, not process group: Spark's Python daemon moves itself and its workers into a group of
        their own. A process that exited and was waited for (a PostgreSQL backend, a Spark Python worker)
        counts in its parent's children's time, and only there: summing over the live ones counts each once.
        """
        return sum(self.cpu.get(p, 0.0) for p in (pid, *self.descendants(pid)))


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of a service: its leader and every process of its group (PostgreSQL's workers)."""
    return sum(rss_bytes(pid) for pid in group_members(pgid) or [pgid])
