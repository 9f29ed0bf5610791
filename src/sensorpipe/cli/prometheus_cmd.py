"""`sensorpipe prometheus export DIR`: scrape configuration, recording and alert rules as files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sensorpipe.cli.console import fail, report_written
from sensorpipe.cli.context import app_context
from sensorpipe.monitoring.prometheus_export import export_prometheus

app = typer.Typer(help="Prometheus configuration generated from the settings.", no_args_is_help=True)


@app.command("export")
def export(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write prometheus.yml and rules/ (created if missing).")],
    json_: Annotated[bool, typer.Option("--json", help="Print the files written as JSON.")] = False,
) -> None:
    """Write `prometheus.yml` (scrape jobs for bridges and stream jobs) and `rules/sensorpipe.yml` into DIR.

    Targets are the metrics endpoints of the settings (`bridge.metrics_port`, `stream.metrics_port`), or
    `monitoring.bridge_targets` / `monitoring.stream_targets` (comma-separated host:port) where
    Prometheus reaches them by another name, as inside Docker. Alerts: end-to-end latency, dead-letter
    rate, Kafka lag, bridge errors, a failed query, a process Prometheus cannot scrape; thresholds from
    `monitoring.*`. Check the result with `promtool check config DIR/prometheus.yml`.
    """
    settings = app_context(ctx).settings()
    try:
        written = export_prometheus(settings, directory)
    except OSError as e:
        fail(f"cannot write into {directory}: {e.strerror}: choose a directory you can write to")
    report_written(written, json_)
