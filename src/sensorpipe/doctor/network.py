"""Problem 2: every configured endpoint resolves and accepts a TCP connection from here.

A compose service name (`kafka`, `minio` ...) resolves only inside the compose network: from the host,
the published port on localhost is the way in (deploy/README.md lists them).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from sensorpipe.config import Settings
from sensorpipe.doctor.check import Check, failed, passed

# Compose service name → the port deploy/docker-compose.yml publishes on the host for it.
COMPOSE_HOST_PORTS = {
    "mosquitto": 1883,
    "kafka": 9092,
    "timescaledb": 5432,
    "minio": 9000,
    "bridge": 9310,
    "stream": 9311,
    "prometheus": 9090,
    "grafana": 3000,
    "spark-master": 7077,
}


@dataclass(frozen=True)
class Endpoint:
    service: str
    host: str
    port: int
    setting: str
    """The settings (and original environment variables) that move it."""

    @property
    def check_name(self) -> str:
        return f"endpoint {self.service} {self.host}:{self.port}"


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or a bare host; a port that is no number counts as the default (the TCP check fails)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or "]" in port:
        return text.strip().strip("[]"), default_port
    return host.strip("[]"), int(port) if port.isdigit() else default_port


def endpoints(settings: Settings) -> list[Endpoint]:
    """mqtt, every Kafka bootstrap server, postgres, and S3 when the lake is on S3."""
    found = [Endpoint("mqtt", settings.mqtt.host, settings.mqtt.port, "mqtt.host/mqtt.port (MQTT_BROKER/MQTT_PORT)")]
    for server in settings.kafka.bootstrap_servers.split(","):
        if server.strip():
            host, port = _host_port(server, 9092)
            found.append(Endpoint("kafka", host, port, "kafka.bootstrap_servers (KAFKA_BOOTSTRAP_SERVERS)"))
    pg = settings.postgres
    found.append(Endpoint("postgres", pg.host, pg.port, "postgres.host/postgres.port (POSTGRES_HOST/POSTGRES_PORT)"))
    if settings.lake.backend == "s3":
        s3_host, s3_port = settings.s3.host_port
        found.append(Endpoint("s3", s3_host, s3_port, "s3.endpoint (MINIO_ENDPOINT)"))
    return found


def unresolved_fix(endpoint: Endpoint) -> str:
    """The inside/outside-Docker hint for compose service names; otherwise, check the name."""
    published = COMPOSE_HOST_PORTS.get(endpoint.host)
    if published is not None:
        return (
            f"{endpoint.host} resolves only inside the compose network; from this machine use"
            f" localhost:{published}, see deploy/README.md: set {endpoint.setting}"
        )
    return f"check the host name (DNS, /etc/hosts) or set {endpoint.setting}"


def probe(endpoint: Endpoint, timeout_s: float = 3.0) -> Check:
    """Resolve, then open (and close) one TCP connection."""
    name = endpoint.check_name
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return failed(
            name, f"{endpoint.host} does not resolve from this machine ({e.strerror})", unresolved_fix(endpoint)
        )
    address = infos[0][4][0]
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout_s):
            pass
    except ConnectionRefusedError:
        return failed(
            name,
            f"nothing listens on {endpoint.host}:{endpoint.port} ({address}): connection refused",
            f"start it (`sensorpipe stack up` for the local stack) or set {endpoint.setting}",
        )
    except TimeoutError:
        return failed(
            name,
            f"{endpoint.host}:{endpoint.port} ({address}) did not answer within {timeout_s:.0f}s",
            f"a firewall or a wrong address: check {endpoint.setting}",
        )
    except OSError as e:
        return failed(
            name, f"{endpoint.host}:{endpoint.port} ({address}): {e.strerror or e}", f"check {endpoint.setting}"
        )
    return passed(name, f"resolves to {address}, accepts TCP")


__all__ = ["COMPOSE_HOST_PORTS", "Endpoint", "endpoints", "probe", "unresolved_fix"]
