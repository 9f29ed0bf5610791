"""`sensorpipe doctor [--json]`: one line per check, ✓ or ✗ with the fix; exit 0 only when all pass."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sensorpipe.cli.checks import run_and_show
from sensorpipe.cli.console import console, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.doctor import Check


def check_line(check: Check) -> str:
    """Rich markup of one check: `✓ name  detail` or `✗ name  detail → fix`."""
    name = f"[bold]{escape(check.name)}[/]"
    if check.ok:
        return f"[green]✓[/] {name}  {escape(check.detail)}"
    mark = "[dim]·[/]" if check.skipped else "[red]✗[/]"
    fix = f" [yellow]→ {escape(check.fix)}[/]" if check.fix and not check.skipped else ""
    return f"{mark} {name}  {escape(check.detail)}{fix}"


def summary(checks: list[Check]) -> str:
    failed = sum(1 for c in checks if not c.ok and not c.skipped)
    skipped = sum(1 for c in checks if c.skipped)
    passed = len(checks) - failed - skipped
    text = f"{passed} passed, {failed} failed"
    return text + (f", {skipped} not checked" if skipped else "")


def doctor(
    ctx: typer.Context,
    grafana: Annotated[
        Path | None,
        typer.Option(
            "--grafana",
            metavar="DIR",
            help="Also check Grafana's provisioning tree in DIR (written by `grafana export`) against the settings.",
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check every dependency for the ten problems of docs/design.md: Java and jars, endpoints, topics and their
    latest records' encodings, database, lake, MQTT login, metrics (and Grafana's provisioning with
    `--grafana DIR`). One line per check, ✓ or ✗ with the fix; exit code 0 only when all pass."""
    # Imported here: the checks load every service's client library, which would slow every command's start.
    from sensorpipe.doctor.environment import doctor_checks

    settings = app_context(ctx).settings()
    checks = run_and_show(
        doctor_checks(settings, grafana), settings, command="doctor", line=None if json_ else check_line
    )
    if json_:
        print_json([asdict(c) for c in checks])
    else:
        console.print(summary(checks))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
