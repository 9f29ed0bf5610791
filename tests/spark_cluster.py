"""A Spark standalone cluster for tests: one Master and one Worker, separate JVMs on 127.0.0.1.

Both start with pyspark's own `bin/spark-class`, each in a process group of its own, with their work
and log directories in a private temp directory. `standalone_cluster()` yields once the worker has
registered with the master, and on exit kills both process groups and checks that none is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark

from tests.support import free_port

HOST = "127.0.0.1"
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class SparkCluster:
    """Where the running cluster listens and keeps its files."""

    port: int
    webui_port: int
    work_dir: Path
    log_dir: Path

    @property
    def url(self) -> str:
        """The master URL a driver connects to (`--master`)."""
        return f"spark://{HOST}:{self.port}"

    def state(self) -> dict[str, Any]:
        """The master's JSON status page: workers, active and completed applications."""
        with urllib.request.urlopen(f"http://{HOST}:{self.webui_port}/json/", timeout=5) as response:
            state: dict[str, Any] = json.load(response)
        return state


def _environment(base: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SPARK_LOCAL_IP=HOST,
        SPARK_LOCAL_HOSTNAME=HOST,
        SPARK_WORKER_DIR=str(base / "work"),  # else the executors' files land in pyspark's own install
        SPARK_LOG_DIR=str(base / "logs"),
        SPARK_CONF_DIR=str(base / "conf"),  # empty: no spark-defaults.conf or spark-env.sh of the machine
    )
    env.pop("SPARK_HOME", None)  # spark-class finds pyspark's own install
    if "JAVA_HOME" not in env and (java := shutil.which("java")):
        env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SPARK_CLASS), *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group (spark-class execs java, which may start children), then check it is gone."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    deadline = time.monotonic() + 30
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {process.pid} ({process.args!r}) is still alive")
        time.sleep(0.2)


def _wait_for_worker(cluster: SparkCluster, processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + 180
    while True:
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                raise AssertionError(f"{process.args!r} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            workers = cluster.state().get("workers", [])
        except (OSError, ValueError):  # not listening yet, or (seen once, in CI) an HTML page before the JSON
            workers = []
        if any(w.get("state") == "ALIVE" for w in workers):
            return
        if time.monotonic() > deadline:
            tails = "\n".join(log.read_text()[-2000:] for log in logs)
            raise AssertionError(f"no worker registered with {cluster.url} within 180 s:\n{tails}")
        time.sleep(0.5)


@contextmanager
def standalone_cluster(cores: int = 1, memory: str = "1g") -> Iterator[SparkCluster]:
    """A Master and one Worker (`cores`, `memory`) bound to 127.0.0.1; both are killed on exit."""
    base = Path(tempfile.mkdtemp(prefix="sensorpipe-spark-cluster-"))
    for name in ("work", "logs", "conf"):
        (base / name).mkdir()
    cluster = SparkCluster(free_port(), free_port(), base / "work", base / "logs")
    env = _environment(base)
    master_log, worker_log = base / "logs" / "master.out", base / "logs" / "worker.out"
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        master = _start(
            [MASTER_CLASS, "--host", HOST, "--port", str(cluster.port), "--webui-port", str(cluster.webui_port)],
            env,
            master_log,
        )
        stack.callback(_stop, master)
        worker_args = ["--host", HOST, "--port", str(free_port()), "--webui-port", str(free_port())]
        worker_args += ["--work-dir", str(cluster.work_dir)]
        worker = _start(
            [WORKER_CLASS, *worker_args, "--cores", str(cores), "--memory", memory, cluster.url], env, worker_log
        )
        stack.callback(_stop, worker)
        _wait_for_worker(cluster, [master, worker], [master_log, worker_log])
        yield cluster
