"""Doctor's integration fixtures: the session stack provisioned once, and doctor's checks run in-process.

Most tests judge the checks' verdicts, not the CLI around them: they run the checks in this process, as
`sensorpipe doctor` runs them (the same list, the same runner), and save a Python start-up and the
imports per run. The tests of the CLI's own output and exit code (test_doctor.py) run the real command.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from sensorpipe.config import load_settings
from sensorpipe.config.settings import parse_assignments
from sensorpipe.doctor import run_checks
from sensorpipe.doctor.environment import doctor_checks
from tests.doctor_support import Doctor, Outcome, metrics_sets
from tests.support import free_port, sensorpipe


@pytest.fixture(scope="package")
def provisioned(stack_config: Path) -> Path:
    """What a user runs before doctor: migrations and topics."""
    for command in (("db", "migrate"), ("topics", "create")):
        result = sensorpipe(*command, config=stack_config)
        assert result.returncode == 0, result.stdout + result.stderr
    return stack_config


@pytest.fixture(scope="package")
def closed_ports() -> tuple[int, int]:
    """Metrics ports nothing listens on: no bridge or stream job runs in these tests (whatever runs elsewhere)."""
    return free_port(), free_port()


@pytest.fixture
def doctor(provisioned: Path, closed_ports: tuple[int, int]) -> Doctor:
    """`sensorpipe --set VALUE ... doctor [--grafana DIR] --json` on the provisioned stack, run in-process."""

    def run(*sets: str, grafana_dir: Path | None = None) -> Outcome:
        settings = load_settings(parse_assignments([*metrics_sets(closed_ports), *sets]), provisioned)
        checks = run_checks(doctor_checks(settings, grafana_dir), settings, command="doctor")
        crashed = [c for c in checks if c.detail.startswith(("the check itself failed", "could not run"))]
        assert not crashed, crashed  # what the CLI would have shown as a bug in doctor
        return Outcome([asdict(c) for c in checks])

    return run
