"""`sensorpipe config show`: the effective configuration, secrets masked."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sensorpipe.cli.console import console, print_json, print_markdown
from sensorpipe.cli.context import app_context
from sensorpipe.config.reference import configuration_page
from sensorpipe.config.settings import describe_fields

app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print every setting with its effective value (secrets masked) and the variables that set it."""
    settings = app_context(ctx).settings()
    values = settings.model_dump(mode="json")
    if json_:
        print_json(values)
        return
    table = Table(title="sensorpipe configuration", show_lines=False)
    for column in ("setting", "value", "environment variables"):
        table.add_column(column)
    for key, _default, env, _description in describe_fields():
        section, name = key.split(".", 1)
        table.add_row(key, str(values[section][name]), env)
    console.print(table)


@app.command("reference")
def reference() -> None:
    """Print docs/configuration.md: every setting, its default, its environment variables and its meaning.

    Regenerate the page after changing a setting: `sensorpipe config reference > docs/configuration.md`.
    """
    print_markdown(configuration_page())
