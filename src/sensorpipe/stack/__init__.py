"""The local stack: real services (Mosquitto, Kafka, PostgreSQL, an S3 server) as processes on 127.0.0.1.

`Stack` and `ServiceState` load on first use: the manager imports every service's client library
(psycopg, boto3), which the bridge and the stream job do not need to import `sensorpipe.stack.ports`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sensorpipe.stack.service import StackError

if TYPE_CHECKING:
    from sensorpipe.stack.manager import ServiceState, Stack

__all__ = ["ServiceState", "Stack", "StackError"]


def __getattr__(name: str) -> object:
    if name in {"ServiceState", "Stack"}:
        from sensorpipe.stack import manager

        return getattr(manager, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
