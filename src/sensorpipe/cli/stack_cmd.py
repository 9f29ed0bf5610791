"""`sensorpipe stack up | down | status | check`: the local services."""

from __future__ import annotations

import time
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from sensorpipe.cli import sensor_cmd
from sensorpipe.cli.checks import run_and_show
from sensorpipe.cli.console import console, err_console, fail, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.cli.options import setting_help
from sensorpipe.config.credentials import credentials_file, load_credentials, secure_home
from sensorpipe.doctor import Check
from sensorpipe.stack import ServiceState, Stack, StackError

app = typer.Typer(
    help="Run the local stack: Mosquitto, Kafka, PostgreSQL and an S3 server on 127.0.0.1.",
    no_args_is_help=True,
)

LakeOption = Annotated[
    Literal["s3", "local"] | None,
    typer.Option(
        "--lake",
        help=setting_help("lake", "backend", "`s3`: run the S3 server; `local`: keep the lake in a directory."),
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
app.add_typer(sensor_cmd.app, name="sensor")


def status_json(states: list[ServiceState]) -> dict[str, object]:
    """`{mqtt: {url, healthy, ...}, kafka: {bootstrap, ...}, postgres: {dsn}, s3: {endpoint}, lake: {uri}}`."""
    out: dict[str, object] = {state.name: state.as_json() for state in states}
    out["healthy"] = all(state.healthy for state in states)
    return out


def roundtrip_line(check: Check) -> str:
    """Rich markup of one round trip: `✓ service   detail (ms)`; the fix too when the runner gave one (a hang)."""
    mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
    fix = f" [yellow]→ {escape(check.fix)}[/]" if check.fix else ""
    return f"{mark} {check.name:<9} {escape(check.detail)}{fix} [dim]({check.seconds * 1000:.0f} ms)[/]"


def roundtrip_json(checks: list[Check]) -> dict[str, object]:
    """`{ok, checks: [{service, ok, detail, seconds}]}`."""
    return {
        "ok": all(c.ok for c in checks),
        "checks": [{"service": c.name, "ok": c.ok, "detail": c.detail, "seconds": c.seconds} for c in checks],
    }


def _table(states: list[ServiceState]) -> Table:
    table = Table(title="sensorpipe stack")
    for column in ("service", "health", "endpoint", "pid", "memory", "detail"):
        table.add_column(column)
    for state in states:
        health = "[green]healthy[/]" if state.healthy else "[red]down[/]"
        memory = f"{state.rss_bytes / 2**20:.0f} MiB" if state.rss_bytes else ""
        table.add_row(state.name, health, " ".join(state.endpoint.values()), str(state.pid or ""), memory, state.detail)
    return table


@app.command("up")
def up(
    ctx: typer.Context,
    lake: LakeOption = None,
    secure: Annotated[
        bool,
        typer.Option(
            "--secure",
            help="Logins everywhere: MQTT with a password file and ACLs (a sensor publishes on its own topic"
            " only, the bridge only reads), Kafka with SASL/PLAIN. Random passwords in"
            " `<home>/secrets/credentials.json` (0600); the home stays secure from then on.",
        ),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Start every service that is not running and return once all answer real client requests.

    Idempotent: a running service is left alone. State (data, logs, pid files) lives under the stack home
    (`--home`, default ./.sensorpipe). A port held by another program is reported, not waited on.

    With `--secure` (once: later commands on the home find its credentials and use them), sensorpipe's own
    clients log in by themselves; a real sensor needs a login of its own: `sensorpipe stack sensor add ID`.
    """
    if secure:
        secure_home(app_context(ctx).settings().home)
    settings = app_context(ctx).settings(lake={"backend": lake})
    stack = Stack(settings)
    began = time.monotonic()
    try:
        with err_console.status("starting the local stack ...") as spinner:

            def report(service: str, line: str) -> None:
                spinner.update(f"{service}: {line}")
                if not json_:
                    console.print(f"  {service}: {line}")

            states = stack.up(report)
    except StackError as e:
        fail(str(e))
    if json_:
        print_json(status_json(states))
    else:
        console.print(_table(states))
        ok(f"stack up in {time.monotonic() - began:.1f}s, state in {settings.home}")
        if load_credentials(settings.home) is not None:
            ok(f"secure: logins required, passwords in {credentials_file(settings.home)}")
    if not all(s.healthy for s in states):
        raise typer.Exit(1)


@app.command("down")
def down(
    ctx: typer.Context,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete all data, logs and configs of the stack.")
    ] = False,
) -> None:
    """Stop exactly the processes `stack up` started (by their pid files); data stays unless `--purge`."""
    stack = Stack(app_context(ctx).settings())
    try:
        stack.down(purge=purge, report=lambda service, line: console.print(f"  {service}: {line}"))
    except StackError as e:
        fail(str(e))
    ok("stack down")


@app.command("status")
def status(ctx: typer.Context, lake: LakeOption = None, json_: JsonOption = False) -> None:
    """Each service's endpoint and health (a real client request each); exit 1 unless all are healthy."""
    states = Stack(app_context(ctx).settings(lake={"backend": lake})).status()
    if json_:
        print_json(status_json(states))
    else:
        console.print(_table(states))
    if not all(s.healthy for s in states):
        raise typer.Exit(1)


@app.command("check")
def check(
    ctx: typer.Context,
    lake: LakeOption = None,
    spark: Annotated[
        bool, typer.Option("--spark", help="Also carry a record Kafka → Spark → Parquet in the lake → back.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """A real round trip through every service, with a readable summary; exit 1 if any fails.

    MQTT publish → subscribe at QoS 1; Kafka produce (acks=all) → consume; PostgreSQL create/insert/select;
    S3 put/get/list/delete (or the local lake directory with `--lake local`); with `--spark`, a record
    read from Kafka by Spark with the pinned connector and written as Parquet to the lake through S3A.
    """
    # Imported here: the round trips load every service's client library, which would slow every command's start.
    from sensorpipe.doctor.roundtrip import roundtrip_checks

    settings = app_context(ctx).settings(lake={"backend": lake})
    specs = roundtrip_checks(settings, spark=spark)
    checks = run_and_show(specs, settings, command="stack check", line=None if json_ else roundtrip_line)
    if json_:
        print_json(roundtrip_json(checks))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
