"""`sensorpipe tail mqtt | kafka`: print messages as they arrive, for humans or (`--json`) for scripts."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Generator
from contextlib import closing
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from sensorpipe.cli.console import console, err_console, fail
from sensorpipe.cli.context import app_context
from sensorpipe.clients.kafka_client import KafkaError
from sensorpipe.clients.mqtt_client import MqttError
from sensorpipe.monitoring.tail import TailRecord, follow_kafka, follow_mqtt, mqtt_subscriptions

app = typer.Typer(
    help="Watch the messages on either end of the bridge as they arrive, without disturbing the pipeline.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

CountOption = Annotated[
    int | None, typer.Option("--count", "-n", min=1, help="Exit 0 after this many messages (default: until Ctrl+C).")
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per line (NDJSON) on stdout, nothing else there; payload as `payload` when it is"
        " UTF-8, else `payload_base64`.",
    ),
]


@app.command("mqtt")
def mqtt_(
    ctx: typer.Context,
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic",
            "-t",
            help="Topic filter (`+` and `#` wildcards); repeatable. Default: the bridge's subscriptions,"
            " `mqtt.topic` and `mqtt.legacy_topic`.",
        ),
    ] = None,
    count: CountOption = None,
    json_: JsonOption = False,
) -> None:
    """Print MQTT messages as they arrive: receive time, topic, QoS, retain flag, size and payload.

    A throw-away session (clean session, unique client id) that never takes over or disturbs the bridge's
    persistent one. Text payloads are printed as text, anything else as base64 with a marker; long payloads
    are cut in human mode (`--json` never cuts). If the broker drops, it reconnects with backoff.

    Examples:

    - `sensorpipe tail mqtt`: what the bridge sees
    - `sensorpipe tail mqtt -t 'sensors/+/data' --count 10`
    - `sensorpipe tail mqtt --json | jq -c '{topic, payload}'`
    """
    settings = app_context(ctx).settings()
    topics = topic or mqtt_subscriptions(settings.mqtt)
    _follow(follow_mqtt(settings.mqtt, topics, _notify), count, json_, settings.mqtt.url)


@app.command("kafka")
def kafka_(
    ctx: typer.Context,
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic",
            "-t",
            help="Topic to follow. Default: `kafka.topic`.",
        ),
    ] = None,
    dlq: Annotated[bool, typer.Option("--dlq", help="Follow the dead-letter topic, `kafka.dlq_topic`.")] = False,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record kept, not at the end.")
    ] = False,
    count: CountOption = None,
    json_: JsonOption = False,
) -> None:
    """Print Kafka records as they arrive: partition, offset, timestamp, key, headers, size and payload.

    Reads every partition under a unique group id and never commits, so no real consumer group moves.
    The bridge puts the MQTT topic and receive time in each record's headers.

    Examples:

    - `sensorpipe tail kafka`: new readings on `kafka.topic`
    - `sensorpipe tail kafka --dlq --from-beginning`: every rejected record kept
    - `sensorpipe tail kafka -t sensor-data --from-beginning --count 5 --json`
    """
    settings = app_context(ctx).settings()
    if topic and dlq:
        fail("--topic and --dlq each name a topic: give one of them")
    name = topic or (settings.kafka.dlq_topic if dlq else settings.kafka.topic)
    records = follow_kafka(settings.kafka, name, from_beginning=from_beginning, notify=_notify)
    _follow(records, count, json_, f"{name} on {settings.kafka.bootstrap_servers}")


def _follow(records: Generator[TailRecord, None, None], count: int | None, json_: bool, where: str) -> None:
    """Print until `count` records, Ctrl+C or SIGTERM (all exit 0 with a count on stderr), or an error (exit 1)."""
    signal.signal(signal.SIGTERM, _interrupt)
    shown = 0
    try:
        with closing(records):
            for record in records:
                if json_:  # ASCII-only JSON: no locale can make this write fail
                    sys.stdout.write(json.dumps(record.to_json(), ensure_ascii=True) + "\n")
                    sys.stdout.flush()
                else:
                    console.print(Text(record.to_line()))
                shown += 1
                if shown == count:
                    break
    except (MqttError, KafkaError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; point stdout at /dev/null so exit's flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    err_console.print(f"{shown} message(s) from {escape(where)}")


def _notify(line: str) -> None:
    err_console.print(Text(line, style="dim"))


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM ends tailing the way Ctrl+C does: cleanly, exit 0."""
    raise KeyboardInterrupt
