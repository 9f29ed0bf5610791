"""The Prometheus endpoint of a long-running sensorpipe process (bridge, stream job)."""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from sensorpipe.errors import SensorpipeError
from sensorpipe.stack import ports


class MetricsPortError(SensorpipeError):
    """The configured metrics port cannot be bound; the message names the setting to change."""


def serve_metrics(registry: CollectorRegistry, host: str, port: int, setting: str) -> WSGIServer:
    """Serve `registry` on http://host:port/metrics from a daemon thread; `setting` names the port's setting."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise MetricsPortError(
            f"metrics port {port} on {host} is not available ({e.strerror}{ports.taken_by(port)}):"
            f" set {setting} to a free port, or stop that program"
        ) from e
    return server
