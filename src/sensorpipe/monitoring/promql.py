"""The PromQL that watches the pipeline, written once for Grafana's panels and alerts and Prometheus' rules.

Every metric named here is exported by the bridge (`bridge/metrics.py`) or the stream job
(`stream/monitoring.py`), or is Prometheus' own `up`; the tests scrape both processes to hold that true.
`{window}` is a range such as `5m`, or Grafana's `$__rate_interval` in panels.
"""

from __future__ import annotations

BRIDGE_JOB = "sensorpipe-bridge"
STREAM_JOB = "sensorpipe-stream"
"""Prometheus job names of the scrape configuration (`prometheus export`)."""


def mqtt_received(window: str) -> str:
    return f"sum(rate(sensorpipe_bridge_received_total[{window}]))"


def kafka_forwarded(window: str) -> str:
    return f"sum(rate(sensorpipe_bridge_forwarded_total[{window}]))"


def stream_read(window: str) -> str:
    return f'sum(rate(sensorpipe_stream_input_rows_total{{query="readings"}}[{window}]))'


def sink_rows(window: str) -> str:
    """Rows per second by sink: database, lake, aggregates."""
    return f"sum by (sink) (rate(sensorpipe_stream_sink_rows_total[{window}]))"


def dead_letters(window: str) -> str:
    """Records per second the bridge (too large for Kafka) and the stream job (invalid) dead-lettered.

    Either side may have no series yet (labelled counters appear with their first reason): `or vector(0)`.
    """
    return (
        f"(sum(rate(sensorpipe_stream_rejected_rows_total[{window}])) or vector(0))"
        f" + (sum(rate(sensorpipe_bridge_dead_lettered_total[{window}])) or vector(0))"
    )


def dead_letters_by_reason(window: str) -> str:
    return f"sum by (reason) (rate(sensorpipe_stream_rejected_rows_total[{window}]))"


def _quantile(quantile: float, histogram: str, window: str, by: str = "le") -> str:
    return f"histogram_quantile({quantile}, sum by ({by}) (rate({histogram}_bucket[{window}])))"


def reading_latency(quantile: float, window: str) -> str:
    """End to end: a reading's own timestamp until it is stored in the database (the stream job's histogram)."""
    return _quantile(quantile, "sensorpipe_stream_reading_latency_seconds", window)


def bridge_latency(quantile: float, window: str) -> str:
    """MQTT receive until Kafka confirmed, in the bridge."""
    return _quantile(quantile, "sensorpipe_bridge_forward_latency_seconds", window)


def batch_duration(quantile: float, window: str) -> str:
    return _quantile(quantile, "sensorpipe_stream_batch_duration_seconds", window, by="le, query")


KAFKA_LAG = 'sum(sensorpipe_stream_kafka_lag_offsets{query="readings"})'
BRIDGE_IN_FLIGHT = "sum(sensorpipe_bridge_in_flight)"
MQTT_CONNECTED = "min(sensorpipe_bridge_mqtt_connected)"
KAFKA_REACHABLE = "min(sensorpipe_bridge_kafka_reachable)"
FAILED_QUERIES = 'sum(sensorpipe_stream_query_state{sensorpipe_stream_query_state="failed"})'


def bridge_errors(window: str) -> str:
    return f"sum by (kind) (rate(sensorpipe_bridge_errors_total[{window}]))"


def target_down(job: str) -> str:
    return f'up{{job="{job}"}} == 0'


PROMETHEUS_OWN = frozenset({"up"})
"""Series Prometheus makes itself while scraping, which no sensorpipe process exports."""
