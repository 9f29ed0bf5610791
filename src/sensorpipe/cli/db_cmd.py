"""`sensorpipe db migrate | stats`: the schema of sensordb, and what it holds."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from sensorpipe.cli.console import console, fail, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.storage.errors import StorageError
from sensorpipe.storage.migrate import migrate as run_migrations
from sensorpipe.storage.stats import db_stats

app = typer.Typer(help="Provision and inspect the pipeline's database.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("migrate")
def migrate(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Create or update the tables, indexes and roles of `postgres.database`; safe to run any number of times.

    Applies `storage/migrations/*.sql` in order (recorded in `schema_migrations`), creates the roles
    `postgres.writer_user` (insert/select for the stream job) and `postgres.reader_user` (select, for
    Grafana), and, where the TimescaleDB extension exists, makes `sensor_data` and `sensor_data_1m`
    hypertables with the `[timescale]` chunk interval, compression and retention.
    """
    settings = app_context(ctx).settings()
    try:
        report = run_migrations(settings)
    except StorageError as e:
        fail(str(e))
    if json_:
        print_json(asdict(report))
        return
    for label in report.applied:
        ok(f"applied {label}")
    if report.already:
        ok(f"{len(report.already)} migration(s) already applied, up to {report.already[-1]}")
    for role in report.roles:
        ok(f"role {role}")
    if report.timescale is not None:
        mark = "[green]✓[/]" if report.timescale.enabled else "[yellow]·[/]"
        console.print(f"{mark} {report.timescale.detail}")


@app.command("stats")
def stats(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Rows, time range, sensors, rejects, and table and index sizes (read with the read-only role)."""
    settings = app_context(ctx).settings()
    try:
        figures = db_stats(settings)
    except StorageError as e:
        fail(str(e))
    if json_:
        print_json(asdict(figures))
        return
    span = (
        f"{figures.first_reading:%Y-%m-%d %H:%M:%S} … {figures.last_reading:%Y-%m-%d %H:%M:%S} UTC"
        if figures.first_reading and figures.last_reading
        else "no readings yet"
    )
    console.print(
        f"{figures.readings:,} readings from {figures.sensors:,} sensor(s), {span}; {figures.rejects:,} rejects;"
        f" {figures.aggregates:,} one-minute aggregates; TimescaleDB {'on' if figures.timescale else 'off'}"
    )
    table = Table()
    for column in ("table", "rows", "data", "indexes", "total"):
        table.add_column(column, justify="right" if column != "table" else "left")
    for size in figures.tables:
        table.add_row(
            size.table, f"{size.rows:,}", _mib(size.table_bytes), _mib(size.index_bytes), _mib(size.total_bytes)
        )
    console.print(table)


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"
