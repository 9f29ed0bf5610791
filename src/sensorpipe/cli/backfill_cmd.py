"""`sensorpipe backfill --from DATE [--to DATE]`: rebuild the database from the lake, idempotently."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sensorpipe.cli.console import err_console, fail, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.storage.backfill import BackfillReport, backfill, days


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-11-27") from e


def backfill_command(
    ctx: typer.Context,
    from_: Annotated[str, typer.Option("--from", help="First day to load (UTC), e.g. 2026-11-27.")],
    to: Annotated[str | None, typer.Option("--to", help="Last day to load (UTC), included; default: today.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the final counts as JSON.")] = False,
) -> None:
    """Reload `sensor_data` and the one-minute aggregates from the lake: the way to rebuild the database.

    Reads the lake's `raw` readings of each day (only files the stream job committed), stores them
    through the same idempotent writer as the stream job (a reading already in `sensor_data` is
    skipped, never duplicated), then computes that day's minutes again from `sensor_data` and upserts
    those that differ. Running it twice changes nothing the second time. Rejects are not in the lake
    and are not restored.

    Examples: `sensorpipe backfill --from 2026-11-27`, `sensorpipe backfill --from 2026-11-01 --to 2026-11-07`
    """
    settings = app_context(ctx).settings()
    first = _day(from_)
    last = _day(to) if to else datetime.now(UTC).date()
    if last < first:
        fail(f"--to {last} is before --from {first}")
    total = sum(1 for _ in days(first, last))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=json_, disable=json_) as bar:
        task = bar.add_task(f"backfill {first} … {last}", total=total)

        def advance(day: date, report: BackfillReport) -> None:
            bar.update(task, advance=1, description=f"{day}: {report.lake_readings:,} readings from the lake")

        report = backfill(settings, first, last, advance)
    if json_:
        print_json(asdict(report))
        return
    ok(
        f"{report.days} day(s), {report.lake_readings:,} readings in the lake: {report.stored:,} stored,"
        f" {report.already_stored:,} already in sensor_data; {report.minutes_changed:,} one-minute aggregates changed"
    )
    if report.empty_days and len(report.empty_days) == report.days:
        err_console.print("[yellow]![/] the lake holds no readings for these days: check the dates and lake settings")
