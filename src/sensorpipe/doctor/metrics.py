"""Problem 8: the bridge and the stream job answer on their Prometheus endpoints."""

from __future__ import annotations

from sensorpipe.config import Settings
from sensorpipe.doctor.check import Check, failed, passed
from sensorpipe.monitoring.scrape import ScrapeError, scrape


def _check(name: str, component: str, host: str, port: int | None, setting: str) -> Check:
    if port is None:
        return passed(name, f"off ({setting}_port unset): Prometheus cannot watch the {component}")
    try:
        result = scrape(host, port)
    except ScrapeError as e:
        return failed(
            name,
            f"no metrics at {host}:{port} ({e.reason})",
            f"start `sensorpipe {component}` (or set {setting}_host/{setting}_port to where it runs)",
        )
    prefix = f"sensorpipe_{component}_"
    if not any(metric.startswith(prefix) for metric in result.names):
        return failed(
            name,
            f"{result.url} answers but has no {prefix}* metrics: another program holds the port",
            f"stop it, or move {setting}_port",
        )
    return passed(name, f"{result.url}: {len(result.samples)} samples")


def check_bridge_metrics(settings: Settings) -> Check:
    bridge = settings.bridge
    return _check("bridge metrics", "bridge", bridge.metrics_host, bridge.metrics_port, "bridge.metrics")


def check_stream_metrics(settings: Settings) -> Check:
    stream = settings.stream
    return _check("stream metrics", "stream", stream.metrics_host, stream.metrics_port, "stream.metrics")


__all__ = ["check_bridge_metrics", "check_stream_metrics"]
