"""`sensorpipe topics create`: the pipeline's Kafka topics, idempotently."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from sensorpipe.cli.console import console, fail, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.clients.kafka_client import KafkaError
from sensorpipe.clients.topics import create_topics

app = typer.Typer(help="Provision the pipeline's Kafka topics.", no_args_is_help=True)


@app.command("create")
def create(ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Create `kafka.topic` and `kafka.dlq_topic` with the configured partitions, replication and retention.

    Idempotent: existing topics are left as they are; one with fewer partitions than configured is a warning.
    """
    settings = app_context(ctx).settings()
    try:
        outcomes = create_topics(settings.kafka)
    except KafkaError as e:
        fail(str(e))
    if json_:
        print_json([asdict(o) for o in outcomes])
        return
    for outcome in outcomes:
        verb = "created" if outcome.created else "exists"
        ok(f"{outcome.topic}: {verb}, {outcome.partitions} partition(s)")
        if outcome.warning:
            console.print(f"[yellow]![/] {outcome.warning}")
