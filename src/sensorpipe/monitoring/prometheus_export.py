"""`sensorpipe prometheus export DIR`: Prometheus' scrape configuration and sensorpipe's rules.

    prometheus.yml          scrape jobs for the bridges and stream jobs, loading the rules below
    rules/sensorpipe.yml    recording rules (rates, latency quantiles, lag) and alerts on them

Targets default to the bridge's and the stream job's metrics endpoints in the settings; inside Docker,
where those listen on 0.0.0.0, `monitoring.bridge_targets`/`stream_targets` name the services instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorpipe.config import Settings
from sensorpipe.monitoring import promql
from sensorpipe.monitoring.provisioning import Written, write_yaml

COMMAND = "prometheus export"
RULES_FILE = "rules/sensorpipe.yml"


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str


READINGS_STORED = Recording(
    "sensorpipe:readings_stored:rate1m", 'sum(rate(sensorpipe_stream_sink_rows_total{sink="database"}[1m]))'
)
MQTT_RECEIVED = Recording("sensorpipe:mqtt_received:rate1m", promql.mqtt_received("1m"))
DEAD_LETTERS = Recording("sensorpipe:dead_letters:rate5m", promql.dead_letters("5m"))
LATENCY_P99 = Recording("sensorpipe:reading_latency_seconds:p99_5m", promql.reading_latency(0.99, "5m"))
KAFKA_LAG = Recording("sensorpipe:kafka_lag:sum", promql.KAFKA_LAG)
BRIDGE_ERRORS = Recording("sensorpipe:bridge_errors:rate5m", "sum(rate(sensorpipe_bridge_errors_total[5m]))")
RECORDINGS = (READINGS_STORED, MQTT_RECEIVED, DEAD_LETTERS, LATENCY_P99, KAFKA_LAG, BRIDGE_ERRORS)


def _targets(configured: str | None, host: str, port: int | None) -> list[str]:
    if configured:
        return [target.strip() for target in configured.split(",") if target.strip()]
    return [] if port is None else [f"{host}:{port}"]


def scrape_config(settings: Settings) -> dict[str, Any]:
    """prometheus.yml: one job per sensorpipe process kind (rule files are relative to this file)."""
    m, bridge, stream = settings.monitoring, settings.bridge, settings.stream
    jobs = {
        promql.BRIDGE_JOB: _targets(m.bridge_targets, bridge.metrics_host, bridge.metrics_port),
        promql.STREAM_JOB: _targets(m.stream_targets, stream.metrics_host, stream.metrics_port),
    }
    interval = f"{m.scrape_interval_s}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(Path(RULES_FILE).parent / "*.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items() if targets
        ],
    }


def _alert(name: str, expr: str, pending: str, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": pending,
        "labels": {"severity": severity, "service": "sensorpipe"},
        "annotations": {"summary": summary},
    }


def rules(settings: Settings) -> dict[str, Any]:
    """Recording rules, then alerts on them and on the scrape itself."""
    m = settings.monitoring
    alerts = [
        _alert(
            "SensorpipeLatencyHigh",
            f"{LATENCY_P99.record} > {m.max_latency_s}",
            "5m",
            "warning",
            f"p99 from reading to database is {{{{ $value | humanizeDuration }}}} (above {m.max_latency_s} s)",
        ),
        _alert(
            "SensorpipeDeadLettersHigh",
            f"{DEAD_LETTERS.record} > {m.max_dead_letters_per_s}",
            "5m",
            "warning",
            f"{{{{ $value | humanize }}}} records/s go to the dead-letter path (above {m.max_dead_letters_per_s})",
        ),
        _alert(
            "SensorpipeKafkaLagHigh",
            f"{KAFKA_LAG.record} > {m.max_kafka_lag}",
            "10m",
            "warning",
            f"the stream job is {{{{ $value | humanize }}}} records behind Kafka (above {m.max_kafka_lag})",
        ),
        _alert(
            "SensorpipeBridgeErrors",
            f"{BRIDGE_ERRORS.record} > 0",
            "10m",
            "warning",
            "the bridge keeps recovering from errors: see its log",
        ),
        _alert(
            "SensorpipeQueryFailed",
            f"{promql.FAILED_QUERIES} > 0",
            "0m",
            "critical",
            "a stream query failed: see the stream job's log",
        ),
        _alert(
            "SensorpipeBridgeDown",
            promql.target_down(promql.BRIDGE_JOB),
            "2m",
            "critical",
            "Prometheus cannot scrape the bridge at {{ $labels.instance }}",
        ),
        _alert(
            "SensorpipeStreamDown",
            promql.target_down(promql.STREAM_JOB),
            "2m",
            "critical",
            "Prometheus cannot scrape the stream job at {{ $labels.instance }}",
        ),
    ]
    return {
        "groups": [
            {
                "name": "sensorpipe-recording",
                "rules": [{"record": r.record, "expr": r.expr} for r in RECORDINGS],
            },
            {"name": "sensorpipe-alerts", "rules": alerts},
        ]
    }


def export_prometheus(settings: Settings, target: Path) -> list[Written]:
    """Write prometheus.yml and the rules into `target`."""
    written = [
        Written(target / "prometheus.yml", "scrape configuration"),
        Written(target / RULES_FILE, "recording and alert rules"),
    ]
    write_yaml(written[0].path, scrape_config(settings), COMMAND)
    write_yaml(written[1].path, rules(settings), COMMAND)
    return written


__all__ = ["RECORDINGS", "export_prometheus", "rules", "scrape_config"]
