"""What doctor's integration tests read its results with: checks by name, which failed, which were skipped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

METRICS = {"bridge metrics", "stream metrics"}
"""Fail in every test: no bridge or stream job serves the metrics ports the tests point doctor at."""


class Outcome:
    """Doctor's checks as its `--json` lists them, by name."""

    def __init__(self, checks: list[dict[str, Any]]) -> None:
        self.checks = {c["name"]: c for c in checks}

    @property
    def failed(self) -> set[str]:
        return {name for name, c in self.checks.items() if not c["ok"] and not c["skipped"]}

    @property
    def skipped(self) -> set[str]:
        return {name for name, c in self.checks.items() if c["skipped"]}


Doctor = Callable[..., Outcome]
"""The `doctor` fixture: `doctor(*set_values, grafana_dir=None)` runs doctor's checks in-process."""


def metrics_sets(closed_ports: tuple[int, int]) -> list[str]:
    """`--set` values that point both metrics checks at ports nothing listens on."""
    return [f"bridge.metrics_port={closed_ports[0]}", f"stream.metrics_port={closed_ports[1]}"]


__all__ = ["METRICS", "Doctor", "Outcome", "metrics_sets"]
