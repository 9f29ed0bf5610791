"""`sensorpipe stack sensor add | list`: MQTT logins of real sensors on a secure stack."""

from __future__ import annotations

from typing import Annotated

import typer

from sensorpipe.cli.console import console, fail, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.config.credentials import CredentialsError, load_credentials
from sensorpipe.contract.identity import topic_for
from sensorpipe.stack import StackError
from sensorpipe.stack.mosquitto import add_sensor_logins

app = typer.Typer(
    help="MQTT logins of sensors on a secure stack (`sensorpipe stack up --secure`).", no_args_is_help=True
)


@app.command("add")
def add(
    ctx: typer.Context,
    sensor_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Sensor ids, e.g. greenhouse-04.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Give each sensor its own MQTT login and print it: username = sensor id, a random password.

    The sensor may then publish on its own topic only (`sensors/<ID>/data` with the default `mqtt.topic`);
    the broker refuses its readings anywhere else. A running broker takes the login at once (no restart).
    Idempotent: a sensor that has a login keeps it, and it is printed again. Passwords are kept in
    `<home>/secrets/credentials.json` (readable by you only).

    Let the device speak MQTT v5 at QoS 1: the broker then says `Not authorized` in its PUBACK when it
    refuses a message (under MQTT 3.1.1 it acknowledges it and drops it, silently).

    Example, then on the device (Mosquitto's client tools):

    ```
    sensorpipe stack sensor add greenhouse-04
    mosquitto_pub -V mqttv5 -h 127.0.0.1 -p 1883 -u greenhouse-04 -P '<password>' -q 1 \\
        -t sensors/greenhouse-04/data -m '{"temperature": 21.5, "humidity": 40}'
    ```
    """
    settings = app_context(ctx).settings()
    try:
        credentials = add_sensor_logins(settings, sensor_ids)
    except (CredentialsError, StackError) as e:
        fail(str(e))
    logins = [
        {"username": sid, "password": credentials.mqtt[sid], "topic": topic_for(settings.mqtt.topic, sid)}
        for sid in dict.fromkeys(sensor_ids)
    ]
    if json_:
        print_json({"broker": settings.mqtt.url, "logins": logins})
        return
    for login in logins:
        ok(f"{login['username']}: password {login['password']} publishes on {login['topic']} at {settings.mqtt.url}")


@app.command("list")
def list_(
    ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False
) -> None:
    """The sensors that have a login (passwords are not shown: `sensor add ID` prints one again)."""
    settings = app_context(ctx).settings()
    credentials = load_credentials(settings.home)
    if credentials is None:
        fail(f"the stack home {settings.home} is not secure: `sensorpipe stack up --secure` makes it so")
    sensors = credentials.sensors()
    if json_:
        print_json(sensors)
        return
    for sensor_id in sensors:
        console.print(f"{sensor_id}  {topic_for(settings.mqtt.topic, sensor_id)}")
