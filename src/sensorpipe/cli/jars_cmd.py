"""`sensorpipe jars fetch | check`: the pinned JVM jar sets (the original stack's problem 1)."""

from __future__ import annotations

from typing import Annotated

import typer

from sensorpipe.cli.console import console, fail, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.jvm import JAR_SETS, JarsError, check_spark_jars, fetch

app = typer.Typer(help="Resolve and check the pinned JVM jars (Spark connectors, Kafka broker).", no_args_is_help=True)


@app.command("fetch")
def fetch_cmd(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Resolve again even if the set is present.")] = False,
) -> None:
    """Resolve every jar set transitively with Maven into the cache directory (idempotent)."""
    settings = app_context(ctx).settings()
    for name in JAR_SETS:
        try:
            with console.status(f"resolving the {name} jar set with Maven ..."):
                jars = fetch(name, settings.stack.cache_dir, force=force, log=lambda _line: None)
        except JarsError as e:
            fail(str(e))
        ok(f"{name}: {len(jars)} jars in {jars[0].parent}")
    problems = check_spark_jars(settings.stack.cache_dir)
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)


@app.command("check")
def check_cmd(ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Check that pyspark, its bundled Hadoop and the fetched connector jars belong together."""
    settings = app_context(ctx).settings()
    problems = check_spark_jars(settings.stack.cache_dir)
    if json_:
        print_json({"ok": not problems, "problems": problems, "versions": JAR_SETS["spark"].properties()})
    elif not problems:
        versions = JAR_SETS["spark"].properties()
        ok(f"pyspark {versions['spark.version']}, Hadoop {versions['hadoop.version']}: jar set fits")
    else:
        for problem in problems:
            console.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
