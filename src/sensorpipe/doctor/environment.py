"""`sensorpipe doctor`'s checks: one ✓ or ✗ (with the fix) per dependency, for the problems of docs/design.md's table.

Each module checks one group (runtime, network, topics, records, database, lake, checkpoints, broker, metrics,
grafana); `doctor_checks` lists them in the order doctor prints them. Checks that talk to a service need its
endpoint check to pass first, so an unreachable host is reported once, where it is, and not again by every
check behind it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from sensorpipe.config import Settings
from sensorpipe.doctor import broker, database, grafana, lake, metrics, network, runtime, topics
from sensorpipe.doctor.check import Check, CheckSpec
from sensorpipe.doctor.checkpoints import checkpoint_specs
from sensorpipe.doctor.records import check_records
from sensorpipe.storage.lake import DATASETS


def _endpoint(endpoint: network.Endpoint, _settings: Settings) -> Check:
    return network.probe(endpoint)


def _topic(topic: str, settings: Settings) -> Check:
    return topics.check_topic(settings, topic)


def doctor_checks(settings: Settings, grafana_dir: Path | None = None) -> list[CheckSpec]:
    """Every check, in the order doctor prints them; Grafana's provisioning only when its directory is given."""
    specs = [
        CheckSpec("java", runtime.check_java, problem=1),
        CheckSpec("spark jars", runtime.check_jars, problem=1),
    ]
    found = network.endpoints(settings)
    by_service: dict[str, tuple[str, ...]] = {}
    for endpoint in found:
        if endpoint.check_name in by_service.get(endpoint.service, ()):
            continue
        specs.append(CheckSpec(endpoint.check_name, partial(_endpoint, endpoint), problem=2))
        by_service[endpoint.service] = (*by_service.get(endpoint.service, ()), endpoint.check_name)
    kafka = by_service.get("kafka", ())
    for topic in dict.fromkeys([settings.kafka.topic, settings.kafka.dlq_topic]):
        specs.append(CheckSpec(f"topic {topic}", partial(_topic, topic), problem=3, needs=kafka))
    readings = settings.kafka.topic
    specs.append(
        CheckSpec(f"records {readings}", check_records, problem=4, needs=(*kafka, f"topic {readings}"), timeout_s=20.0)
    )
    pg = by_service["postgres"]
    specs += [
        CheckSpec("database", database.check_connect, problem=6, needs=pg),
        CheckSpec("database schema", database.check_migrations, problem=6, needs=("database",)),
        CheckSpec("raw_data jsonb", database.check_raw_data, problem=6, needs=("database schema",)),
        CheckSpec("database roles", database.check_roles, problem=6, needs=("database",)),
        CheckSpec("timescaledb", database.check_timescale, problem=6, needs=("database",)),
        CheckSpec("lake bucket", lake.check_bucket, problem=5, needs=by_service.get("s3", ())),
        *(
            CheckSpec(f"lake table {dataset}", partial(lake.check_table, dataset), problem=5, needs=("lake bucket",))
            for dataset in DATASETS
        ),
        *checkpoint_specs(settings, by_service),
        CheckSpec("mqtt login", broker.check_mqtt_login, problem=9, needs=by_service["mqtt"]),
        CheckSpec("bridge metrics", metrics.check_bridge_metrics, problem=8),
        CheckSpec("stream metrics", metrics.check_stream_metrics, problem=8),
    ]
    if grafana_dir is not None:
        specs.append(CheckSpec(grafana.NAME, partial(grafana.check_grafana, grafana_dir), problem=10))
    return specs


__all__ = ["doctor_checks"]
