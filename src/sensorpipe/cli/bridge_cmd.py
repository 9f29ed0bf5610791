"""`sensorpipe bridge`: MQTT → Kafka, byte for byte, nothing acknowledged before Kafka has it."""

from __future__ import annotations

import functools
import signal
from dataclasses import asdict
from types import FrameType
from typing import Annotated

import typer
from confluent_kafka import Producer

from sensorpipe.bridge.forwarder import Bridge
from sensorpipe.bridge.links import PahoLink
from sensorpipe.cli.console import log_events, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.cli.options import setting_help
from sensorpipe.clients.topics import create_topics
from sensorpipe.monitoring.metrics_server import serve_metrics


def bridge(
    ctx: typer.Context,
    client_id: Annotated[
        str | None,
        typer.Option(
            help=setting_help(
                "bridge",
                "client_id",
                "MQTT client id; keep it fixed so the broker queues readings while the bridge is down.",
            )
        ),
    ] = None,
    share_group: Annotated[
        str | None,
        typer.Option(
            help=setting_help(
                "bridge", "share_group", "MQTT v5 shared subscription group: bridges in one group split the load."
            )
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help=setting_help("bridge", "metrics_port", "Prometheus metrics port on `bridge.metrics_host`.")),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the final totals as JSON on stdout.")] = False,
) -> None:
    """Forward every MQTT reading to Kafka, untouched, losing nothing.

    Subscribes to `mqtt.topic` (`sensors/+/data`) and `mqtt.legacy_topic` (`sensors/data`) at QoS 1
    with a persistent session, so Mosquitto queues readings while the bridge is down. Each payload
    goes to `kafka.topic` byte for byte, keyed by sensor id, with the MQTT topic and receive time in
    headers; it is acknowledged to MQTT only after Kafka confirmed it (idempotent producer, acks=all).
    Creates its Kafka topics at start; waits and reconnects, with backoff, when either broker is down.

    Ctrl+C (or SIGTERM) stops gracefully: in-flight messages are confirmed and acknowledged first;
    a second Ctrl+C stops at once (unconfirmed messages are redelivered to the next bridge).

    Several bridges: `sensorpipe bridge --share-group ingest --client-id bridge-1` and
    `... --client-id bridge-2`. Metrics: `curl 127.0.0.1:9310/metrics`.
    """
    settings = app_context(ctx).settings(
        bridge={"client_id": client_id, "share_group": share_group, "metrics_port": metrics_port}
    )
    log_events()
    worker = Bridge(
        settings,
        mqtt=functools.partial(PahoLink, settings.mqtt, settings.bridge.client_id),
        producer=Producer,
        provision=functools.partial(create_topics, settings.kafka, timeout_s=5.0),
    )
    server = None
    if settings.bridge.metrics_port is not None:
        server = serve_metrics(
            worker.metrics.registry, settings.bridge.metrics_host, settings.bridge.metrics_port, "bridge.metrics_port"
        )

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.run()  # a BridgeFatal is a SensorpipeError: `cli.main` prints its one line
    finally:
        if server is not None:
            server.shutdown()
    totals = worker.metrics.snapshot()
    if json_:
        print_json(asdict(totals))
        return
    ok(
        f"bridge stopped: {totals.received:,} received, {totals.forwarded:,} forwarded,"
        f" {totals.acknowledged:,} acknowledged, {totals.dead_lettered:,} dead-lettered"
    )
