"""The `sensorpipe` command line: each command group in its own module, registered here."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from sensorpipe import __version__
from sensorpipe.cli.console import fail
from sensorpipe.cli.context import AppContext
from sensorpipe.cli.options import env_help, setting_help
from sensorpipe.config.env import CONFIG_FILE_ENV
from sensorpipe.config.settings import parse_assignments
from sensorpipe.errors import SensorpipeError

HELP = (
    "IoT readings from MQTT through Kafka and Spark into a Delta lake and PostgreSQL, losing nothing.\n\n"
    "Settings come from flags (`--set section.field=value`), then environment variables"
    " (`SENSORPIPE_SECTION_FIELD`, or the original stack's `MQTT_BROKER`, `KAFKA_BOOTSTRAP_SERVERS`,"
    " `POSTGRES_HOST`, `MINIO_ENDPOINT` ...), then `sensorpipe.toml`, then defaults that point at the"
    " local stack. See `sensorpipe config show`.\n\n"
    "Start here: `sensorpipe stack up`, then `sensorpipe stack check`."
)

COMMANDS: dict[str, tuple[str, str]] = {
    "stack": ("stack_cmd", "app"),
    "config": ("config_cmd", "app"),
    "jars": ("jars_cmd", "app"),
    "topics": ("topics_cmd", "app"),
    "db": ("db_cmd", "app"),
    "tail": ("tail_cmd", "app"),
    "grafana": ("grafana_cmd", "app"),
    "prometheus": ("prometheus_cmd", "app"),
    "bridge": ("bridge_cmd", "bridge"),
    "stream": ("stream_cmd", "stream"),
    "simulate": ("simulate_cmd", "simulate_command"),
    "backfill": ("backfill_cmd", "backfill_command"),
    "lake": ("lake_cmd", "app"),
    "top": ("top_cmd", "top"),
    "doctor": ("doctor_cmd", "doctor"),
    "run": ("run_cmd", "run"),
    "bench": ("bench_cmd", "bench"),
}
"""Each command: the module under sensorpipe.cli that defines it, and its Typer group or command function."""

_ROOT_OPTIONS_WITH_VALUE = {"--config", "-c", "--set", "--home"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sensorpipe {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help=env_help("TOML settings file.", CONFIG_FILE_ENV))
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one setting, e.g. `--set mqtt.port=1884`; repeatable."),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option("--home", help=setting_help("stack", "home", "State directory of the local stack.")),
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


def build_app(only: str | None = None) -> typer.Typer:
    """The CLI with every command, or with only the command `only` when it names one.

    A command's module is imported only when it is registered: importing them all (pyarrow's dataset
    module pulls in pandas; boto3, pyspark, librdkafka) cost every invocation a second or more,
    including each bridge and stream job that `sensorpipe run` starts.
    """
    app = typer.Typer(
        name="sensorpipe",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )
    app.callback()(root)
    for name, (module, attribute) in COMMANDS.items():
        if only in COMMANDS and name != only:
            continue
        target = getattr(importlib.import_module(f"sensorpipe.cli.{module}"), attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def invoked_command(argv: list[str]) -> str | None:
    """The command named on a command line (the first argument that is not a root option or its value)."""
    args = iter(argv)
    for arg in args:
        if arg in _ROOT_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Run one command. A `SensorpipeError` is the user's to fix: its one line, exit 1. Anything else
    is a bug: one line saying so and how to see the traceback (`-v`, which re-raises it)."""
    argv = sys.argv[1:]
    try:
        build_app(invoked_command(argv))()
    except SensorpipeError as e:
        fail(str(e))
    except Exception as e:
        if "-v" in argv or "--verbose" in argv:
            raise
        fail(f"unexpected {type(e).__name__}: {e} (a bug in sensorpipe: rerun with -v for the traceback and report it)")


__all__ = ["COMMANDS", "build_app", "invoked_command", "main"]
