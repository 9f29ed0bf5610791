"""`stack up / down / status`: the local services as one unit, with state under one directory."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorpipe.config import Settings
from sensorpipe.config.credentials import load_credentials
from sensorpipe.stack import ports
from sensorpipe.stack.kafka import Kafka
from sensorpipe.stack.mosquitto import Mosquitto
from sensorpipe.stack.postgres import Postgres
from sensorpipe.stack.process import ProcessError, exited, group_rss_bytes, log_tail, spawn, stop
from sensorpipe.stack.seaweedfs import SeaweedS3
from sensorpipe.stack.service import NotReady, Service, StackError
from sensorpipe.storage.s3 import S3Error, list_buckets

_MARKER = "stack.json"
_LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class ServiceState:
    """How one service is doing, as `status` reports it."""

    name: str
    endpoint: dict[str, str]
    managed: bool
    healthy: bool
    detail: str
    pid: int | None = None
    rss_bytes: int = 0
    log: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.endpoint,
            "healthy": self.healthy,
            "managed": self.managed,
            "detail": self.detail,
        }
        if self.managed:
            out.update(pid=self.pid, rss_bytes=self.rss_bytes, log=self.log)
        return out


Report = Callable[[str, str], None]
"""Progress callback: (service name, one line about what happened)."""


def _quiet(_service: str, _line: str) -> None:
    return None


class Stack:
    """The services `stack up` runs for the current settings, in start order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home
        candidates: list[Service] = [Postgres(settings), Mosquitto(settings), Kafka(settings)]
        if settings.lake.backend == "s3":
            candidates.append(SeaweedS3(settings))
        self.services = candidates

    def managed(self, service: Service) -> bool:
        """Services configured at a non-local host are someone else's: probed, never started."""
        hosts = {
            "postgres": self.settings.postgres.host,
            "mqtt": self.settings.mqtt.host,
            "kafka": self.settings.kafka.first_host_port[0],
            "s3": self.settings.s3.host_port[0],
        }
        return hosts[service.name] in _LOCAL_HOSTS

    def up(self, report: Report = _quiet) -> list[ServiceState]:
        """Start what is not running, wait until each answers a real client request, provision."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / _MARKER).write_text(json.dumps({"lake": self.settings.lake_uri}, indent=2))
        to_start: list[Service] = []
        secure = load_credentials(self.home) is not None
        for service in self.services:
            if not self.managed(service):
                report(service.name, "external endpoint, not started here")
            elif service.pid_file.running_pid() is not None:
                if secure and not service.secured():
                    raise StackError(
                        f"{service.name} is running without the password file and ACL of this secure home:"
                        " `sensorpipe stack down`, then `sensorpipe stack up` starts it with them"
                    )
                report(service.name, "already running")
            else:
                to_start.append(service)
        for service in to_start:
            self._check_ports(service)
        started: list[Service] = []
        try:
            for service in to_start:
                self._start(service)
                started.append(service)
                report(service.name, "starting")
                note = service.start_note()
                if note:
                    report(service.name, note)
            for service in started:
                self._wait_ready(service)
                self._provision(service)
                report(service.name, "ready")
        except StackError:
            # All or nothing: a failed `up` leaves no half-started stack behind.
            for service in reversed(started):
                stop(service.pid_file, sig=service.stop_signal)
            raise
        self._local_lake()
        return self.status()

    def _start(self, service: Service) -> None:
        service.prepare()
        try:
            spawn(
                service.command(),
                log_file=service.log_file,
                pid_file=service.pid_file,
                cwd=service.dir,
                user=service.run_as(),
            )
        except ProcessError as e:
            raise StackError(f"{service.name}: {e}") from e

    def _provision(self, service: Service) -> None:
        try:
            service.provision()
        except StackError:
            raise
        except Exception as e:
            raise StackError(f"{service.name}: provisioning failed ({e}): read {service.log_file}") from e

    def _check_ports(self, service: Service) -> None:
        for role, port in service.ports().items():
            if not ports.is_free(service.host, port):
                raise StackError(
                    f"{service.name}: port {port} ({role}) on {service.host} is already taken{ports.taken_by(port)}:"
                    " stop that program or give sensorpipe another port (see `sensorpipe config show`)"
                )

    def _wait_ready(self, service: Service) -> None:
        deadline = time.monotonic() + self.settings.stack.start_timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            pid = service.pid_file.running_pid()
            if pid is None or exited(pid):
                service.pid_file.remove()
                raise StackError(
                    f"{service.name} exited during start-up: read {service.log_file}\n{_tail(service.log_file)}"
                )
            try:
                service.ready()
                return
            except NotReady as e:
                last = str(e)
            time.sleep(0.25)
        raise StackError(
            f"{service.name} did not answer within {self.settings.stack.start_timeout_s:.0f}s on port(s) "
            f"{', '.join(str(p) for p in service.ports().values())} ({last}): read {service.log_file}"
        )

    def _local_lake(self) -> None:
        if self.settings.lake.backend == "local":
            self.settings.lake_dir.mkdir(parents=True, exist_ok=True)

    def down(self, *, purge: bool = False, report: Report = _quiet) -> None:
        """Stop exactly the processes the stack started; `purge` also deletes the stack's home."""
        for service in reversed(self._all_services()):
            try:
                stopped = stop(service.pid_file, sig=service.stop_signal)
            except ProcessError as e:
                raise StackError(f"{service.name}: {e}: read {service.log_file}") from e
            if stopped:
                report(service.name, "stopped")
        if purge and self.home.exists():
            if not (self.home / _MARKER).exists():
                raise StackError(
                    f"{self.home} does not look like a sensorpipe stack home (no {_MARKER}): not deleting it"
                )
            shutil.rmtree(self.home)
            report("stack", f"deleted {self.home}")

    def _all_services(self) -> list[Service]:
        """Every kind of service, so `down` also stops an S3 server started before `--lake local`."""
        names = {s.name for s in self.services}
        return self.services + [s for s in (SeaweedS3(self.settings),) if s.name not in names]

    def status(self) -> list[ServiceState]:
        states = [self._state(service) for service in self.services]
        states.append(self._lake_state())
        return states

    def _state(self, service: Service) -> ServiceState:
        managed = self.managed(service)
        pid = service.pid_file.running_pid() if managed else None
        if managed and pid is None:
            return ServiceState(
                service.name, service.endpoint(), managed, False, "not running", log=str(service.log_file)
            )
        try:
            detail, healthy = service.probe(), True
        except NotReady as e:
            detail, healthy = str(e), False
        return ServiceState(
            service.name,
            service.endpoint(),
            managed,
            healthy,
            detail,
            pid=pid,
            rss_bytes=group_rss_bytes(pid) if pid else 0,
            log=str(service.log_file) if managed else None,
        )

    def _lake_state(self) -> ServiceState:
        uri = self.settings.lake_uri
        if self.settings.lake.backend == "local":
            path = self.settings.lake_dir
            ok = path.is_dir()
            return ServiceState("lake", {"uri": uri}, False, ok, "local directory" if ok else f"{path} is missing")
        bucket = self.settings.s3.bucket
        try:
            ok = bucket in list_buckets(self.settings.s3)
        except S3Error as e:
            return ServiceState("lake", {"uri": uri}, False, False, str(e))
        return ServiceState("lake", {"uri": uri}, False, ok, f"bucket {bucket} {'present' if ok else 'missing'}")


def _tail(path: Path) -> str:
    return "\n".join(log_tail(path)) or "(no log)"
