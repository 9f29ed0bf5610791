"""The `sensorpipe` command line: each command group in its own module, registered here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from sensorpipe import __version__
from sensorpipe.cli import (
    backfill_cmd,
    bench_cmd,
    bridge_cmd,
    config_cmd,
    db_cmd,
    doctor_cmd,
    grafana_cmd,
    jars_cmd,
    prometheus_cmd,
    run_cmd,
    simulate_cmd,
    stack_cmd,
    stream_cmd,
    tail_cmd,
    top_cmd,
    topics_cmd,
)
from sensorpipe.cli.console import fail
from sensorpipe.cli.context import AppContext
from sensorpipe.config.env import CONFIG_FILE_ENV
from sensorpipe.config.settings import parse_assignments

app = typer.Typer(
    name="sensorpipe",
    help="IoT readings from MQTT through Kafka and Spark into a Parquet lake and PostgreSQL, losing nothing.\n\n"
    "Settings come from flags (`--set section.field=value`), then environment variables"
    " (`SENSORPIPE_SECTION_FIELD`, or the original stack's `MQTT_BROKER`, `KAFKA_BOOTSTRAP_SERVERS`,"
    " `POSTGRES_HOST`, `MINIO_ENDPOINT` ...), then `sensorpipe.toml`, then defaults that point at the"
    " local stack. See `sensorpipe config show`.\n\n"
    "Start here: `sensorpipe stack up`, then `sensorpipe stack check`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(stack_cmd.app, name="stack")
app.add_typer(config_cmd.app, name="config")
app.add_typer(jars_cmd.app, name="jars")
app.add_typer(topics_cmd.app, name="topics")
app.add_typer(db_cmd.app, name="db")
app.add_typer(tail_cmd.app, name="tail")
app.add_typer(grafana_cmd.app, name="grafana")
app.add_typer(prometheus_cmd.app, name="prometheus")
app.command("bridge")(bridge_cmd.bridge)
app.command("stream")(stream_cmd.stream)
app.command("simulate")(simulate_cmd.simulate_command)
app.command("backfill")(backfill_cmd.backfill_command)
app.command("top")(top_cmd.top)
app.command("doctor")(doctor_cmd.doctor)
app.command("run")(run_cmd.run)
app.command("bench")(bench_cmd.bench)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sensorpipe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help=f"TOML settings file. [env var: {CONFIG_FILE_ENV}]")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one setting, e.g. `--set mqtt.port=1884`; repeatable."),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="State directory of the local stack. [env var: SENSORPIPE_STACK_HOME]"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug lines.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        overrides = parse_assignments(set_ or [])
    except ValueError as e:
        fail(str(e))
    if home is not None:
        overrides.setdefault("stack", {})["home"] = home
    root_args = [arg for assignment in set_ or [] for arg in ("--set", assignment)]
    if config is not None:
        root_args += ["--config", str(config.resolve())]
    if home is not None:
        root_args += ["--home", str(home.resolve())]
    if verbose:
        root_args.append("--verbose")
    ctx.obj = AppContext(config_file=config, overrides=overrides, root_args=root_args)


def main() -> None:
    app()


__all__ = ["app", "main"]
