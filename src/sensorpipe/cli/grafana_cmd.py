"""`sensorpipe grafana export DIR`: Grafana's data sources, dashboards and alert rules as files (problem 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sensorpipe.cli.console import console, fail, report_written
from sensorpipe.cli.context import app_context
from sensorpipe.monitoring.grafana import export_grafana
from sensorpipe.monitoring.grafana.datasources import READER_PASSWORD_ENV
from sensorpipe.monitoring.grafana.export import GRAFANA_PROVISIONING

app = typer.Typer(help="Grafana provisioning generated from the settings.", no_args_is_help=True)


@app.command("export")
def export(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write the provisioning tree (created if missing).")],
    seen_at: Annotated[
        Path,
        typer.Option("--grafana-dir", help="Where Grafana will see DIR: its provisioning directory."),
    ] = Path(GRAFANA_PROVISIONING),
    json_: Annotated[bool, typer.Option("--json", help="Print the files written as JSON.")] = False,
) -> None:
    """Write data sources, dashboards and alert rules for Grafana 11 into DIR.

    Mount DIR as Grafana's provisioning directory (`/etc/grafana/provisioning`) and the dashboards
    work on first start: **IoT overview**, **Sensor metrics**, **Pipeline health**, plus alerts for a
    silent sensor, the dead-letter rate and end-to-end latency. The PostgreSQL data source logs in as
    the read-only `postgres.reader_user`; its password is read from Grafana's environment
    (`SENSORPIPE_POSTGRES_READER_PASSWORD`), never written to a file. The same settings give the same
    files, byte for byte.

    Example: `sensorpipe --set monitoring.prometheus_url=http://prometheus:9090 grafana export ./provisioning`
    """
    settings = app_context(ctx).settings()
    try:
        written = export_grafana(settings, directory, seen_at)
    except OSError as e:
        fail(f"cannot write into {directory}: {e.strerror}: choose a directory you can write to")
    report_written(written, json_)
    if not json_:
        console.print(f"Grafana needs {READER_PASSWORD_ENV} in its environment for the PostgreSQL data source.")
