"""`sensorpipe lake query | maintain | migrate`: the lake's Delta tables, without Spark."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from sensorpipe.cli.console import console, err_console, ok, print_json
from sensorpipe.cli.context import app_context

app = typer.Typer(
    help="The lake's Delta tables `raw` and `agg_1m`: SQL on them, their upkeep, and migrating an older lake.",
    no_args_is_help=True,
)


@app.command("query")
def query_command(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="DuckDB SQL over the tables `raw` and `agg_1m`.")],
    json_: Annotated[bool, typer.Option("--json", help="Print the rows as a JSON list of objects.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print the rows as CSV with a header line.")] = False,
) -> None:
    """Run SQL on the lake's current snapshot with DuckDB, in this process: no Spark, no JVM.

    `raw` holds the readings (one row each, with the sensor's name, location and kind), `agg_1m` the
    final one-minute aggregates; both have `date` (`YYYY-MM-DD`, UTC, the partition: filter on it to
    read only those days) and `hour`.

    Example: `sensorpipe lake query "select sensor_id, avg(temperature) from raw where date = '2026-12-07'
    group by 1"`
    """
    from sensorpipe.storage.lake_query import query

    result = query(app_context(ctx).settings(), sql)
    if json_:
        print_json(result.to_pylist())
    elif csv:
        import pyarrow.csv as pacsv

        pacsv.write_csv(result, sys.stdout.buffer)
    else:
        table = Table(*result.schema.names)
        for row in result.to_pylist():
            table.add_row(*("" if value is None else str(value) for value in row.values()))
        console.print(table)
        err_console.print(f"{result.num_rows:,} row(s)")


@app.command("maintain")
def maintain_command(
    ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False
) -> None:
    """Compact small files, checkpoint the log, apply `lake.retention_days` and VACUUM, table by table.

    The stream job does the same every `lake.maintenance_interval_s`; this runs it now, safely beside a
    running job (each step is a Delta commit; no commit can overwrite another). Files that compaction or
    retention removed are deleted once older than `lake.vacuum_retention_hours`.
    """
    from sensorpipe.storage.lake_upkeep import maintain_all

    upkeeps = maintain_all(app_context(ctx).settings())
    if json_:
        print_json([asdict(u) for u in upkeeps])
        return
    if not upkeeps:
        ok("the lake has no tables yet: nothing to maintain")
    for u in upkeeps:
        ok(
            f"{u.dataset}: {u.files_compacted} file(s) compacted into {u.files_written}, {u.rows_deleted:,} old"
            f" row(s) deleted, {u.files_vacuumed} file(s) vacuumed; version {u.version} ({u.seconds:.1f} s)"
        )


@app.command("migrate")
def migrate_command(
    ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False
) -> None:
    """Make a lake written by Spark's file sink (sensorpipe before Delta) into the Delta tables.

    Exactly the files its `_spark_metadata` log committed go into `raw`, each reading once (running it
    again adds nothing); the old directories and log are then deleted. The aggregates compute `agg_1m`
    again from `raw` at the next start. The stream job does this by itself when it starts on such a
    lake; stop it before running this by hand.
    """
    from sensorpipe.stream.lake_migrate import migrate_lake

    migrated = migrate_lake(app_context(ctx).settings())
    if json_:
        print_json(asdict(migrated) if migrated else None)
    elif migrated is None:
        ok("the lake has no file sink log: nothing to migrate")
    else:
        ok(
            f"{migrated.readings:,} reading(s) from {migrated.files_read} committed file(s) now in raw;"
            f" removed {len(migrated.removed)} old director(ies) and checkpoint(s)"
        )
