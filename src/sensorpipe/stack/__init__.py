"""The local stack: real services (Mosquitto, Kafka, PostgreSQL, an S3 server) as processes on 127.0.0.1."""

from sensorpipe.stack.manager import ServiceState, Stack
from sensorpipe.stack.service import StackError

__all__ = ["ServiceState", "Stack", "StackError"]
