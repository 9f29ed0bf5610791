"""What every service of the local stack provides, so that `stack up/down/status` treat them alike."""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.stack.process import PidFile


class StackError(SensorpipeError):
    """A service of the local stack failed; the message names the service, the cause and the fix."""


class NotReady(Exception):
    """A health probe did not get a real answer yet; the message says what it saw."""


class Service(ABC):
    """One local process: its files under `<home>/<name>/`, its ports on 127.0.0.1, a real-client probe."""

    name: ClassVar[str]
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host = settings.stack.bind_host
        self.dir: Path = settings.home / self.name
        self.log_file: Path = settings.home / "logs" / f"{self.name}.log"
        self.pid_file = PidFile(settings.home / "run" / f"{self.name}.pid")

    @abstractmethod
    def ports(self) -> dict[str, int]:
        """Every TCP port the process listens on, by role; all are checked before it starts."""

    @abstractmethod
    def endpoint(self) -> dict[str, str]:
        """What clients connect to, as `stack status --json` reports it (secrets masked)."""

    @abstractmethod
    def prepare(self) -> None:
        """Idempotent work before the first start: directories, generated config, formatting."""

    @abstractmethod
    def command(self) -> list[str]:
        """The foreground command that runs the service."""

    @abstractmethod
    def probe(self) -> str:
        """Ask the service a real client question; return a short answer or raise NotReady."""

    def ready(self) -> None:
        """Raise NotReady until the process can be provisioned; by default the full probe."""
        self.probe()

    def start_note(self) -> str | None:
        """One line worth saying when the process starts (an optional feature it starts with), if any."""
        return None

    def run_as(self) -> str | None:
        """The account the process runs as, when it must not run as the invoking user."""
        return None

    def provision(self) -> None:
        """Idempotent work once the service answers: users, databases, buckets."""

    def secured(self) -> bool:
        """Whether the configuration the process runs with has the access control of a secure home.

        Only Mosquitto and Kafka change between the modes; the others always require their logins.
        """
        return True
