"""Checks on the terminal, for `doctor` and `stack check`: each check's line as soon as it is known."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sensorpipe.cli.console import console
from sensorpipe.config import Settings
from sensorpipe.doctor import Check, CheckSpec, run_checks


def run_and_show(
    specs: Sequence[CheckSpec], settings: Settings, *, command: str, line: Callable[[Check], str] | None
) -> list[Check]:
    """Every check's result. With `line` (not for `--json`), each check's line is printed in the order of
    `specs` as soon as it and those before it are known, under a spinner while any still runs."""
    if line is None:
        return run_checks(specs, settings, command=command)
    with console.status("checking ..."):
        return run_checks(specs, settings, command=command, on_result=lambda check: console.print(line(check)))


__all__ = ["run_and_show"]
