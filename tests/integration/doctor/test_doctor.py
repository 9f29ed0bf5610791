"""`sensorpipe doctor` against the session stack: healthy, then broken in exactly one way at a time.

The first two tests and the Grafana one run the real command, for its `--json`, its lines and its exit
code; the others judge the checks' verdicts, run in-process (the `doctor` fixture, conftest.py).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from sensorpipe.config import Settings
from sensorpipe.doctor.database import check_timescale
from tests.doctor_support import METRICS, Doctor, Outcome, metrics_sets
from tests.support import PrivatePostgres, free_port, new_database, sensorpipe

pytestmark = pytest.mark.integration


def _flags(closed_ports: tuple[int, int], *sets: str) -> list[str]:
    return [arg for value in (*metrics_sets(closed_ports), *sets) for arg in ("--set", value)]


def test_healthy_stack_passes_everything_but_the_metrics_of_processes_not_running(
    provisioned: Path, closed_ports: tuple[int, int], stack_settings: Settings
) -> None:
    result = sensorpipe(*_flags(closed_ports), "doctor", "--json", config=provisioned, timeout_s=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    outcome = Outcome(json.loads(result.stdout))
    assert outcome.failed == METRICS, outcome.checks
    assert not outcome.skipped
    kafka_host, kafka_port = stack_settings.kafka.first_host_port
    expected = {
        "java",
        "spark jars",
        f"endpoint mqtt 127.0.0.1:{stack_settings.mqtt.port}",
        f"endpoint kafka {kafka_host}:{kafka_port}",
        f"endpoint postgres 127.0.0.1:{stack_settings.postgres.port}",
        f"endpoint s3 {':'.join(map(str, stack_settings.s3.host_port))}",
        "topic sensor-data",
        "topic sensor-data-dlq",
        "records sensor-data",
        "database",
        "database schema",
        "raw_data jsonb",
        "database roles",
        "timescaledb",
        "lake bucket",
        "lake table raw",
        "lake table agg_1m",
        "checkpoint readings",
        "checkpoint aggregates_lake",
        "mqtt login",
        *METRICS,
    }
    assert set(outcome.checks) == expected
    bridge = outcome.checks["bridge metrics"]
    assert f"127.0.0.1:{closed_ports[0]}" in bridge["detail"]
    assert "start `sensorpipe bridge`" in bridge["fix"]
    assert "start `sensorpipe stream`" in outcome.checks["stream metrics"]["fix"]
    assert {c["problem"] for c in outcome.checks.values()} == {1, 2, 3, 4, 5, 6, 7, 8, 9}


def test_human_output_is_one_line_per_check_with_the_fix(provisioned: Path, closed_ports: tuple[int, int]) -> None:
    result = sensorpipe(*_flags(closed_ports), "doctor", config=provisioned, timeout_s=120)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "20 passed, 2 failed"
    assert sum(line.startswith("✓ ") for line in lines) == 20
    bridge = next(line for line in lines if line.startswith("✗ bridge metrics"))
    assert "→ start `sensorpipe bridge`" in bridge
    assert "Traceback" not in result.stderr


def test_missing_topic(doctor: Doctor) -> None:
    topic = f"missing-{uuid.uuid4().hex[:8]}"
    outcome = doctor(f"kafka.topic={topic}")
    assert outcome.failed == {f"topic {topic}", *METRICS}
    assert "missing" in outcome.checks[f"topic {topic}"]["detail"]
    assert "`sensorpipe topics create`" in outcome.checks[f"topic {topic}"]["fix"]


def test_fewer_partitions_than_configured(doctor: Doctor) -> None:
    outcome = doctor("kafka.partitions=5")
    assert outcome.failed == {"topic sensor-data", "topic sensor-data-dlq", *METRICS}
    assert "fewer than kafka.partitions = 5" in outcome.checks["topic sensor-data"]["detail"]


def test_compose_host_name_gets_the_docker_hint(doctor: Doctor) -> None:
    outcome = doctor("kafka.bootstrap_servers=kafka:29092")
    assert outcome.failed == {"endpoint kafka kafka:29092", *METRICS}
    assert outcome.skipped == {
        "topic sensor-data",
        "topic sensor-data-dlq",
        "records sensor-data",
        "checkpoint readings",
    }
    check = outcome.checks["endpoint kafka kafka:29092"]
    assert "does not resolve" in check["detail"]
    assert "resolves only inside the compose network; from this machine use localhost:9092" in check["fix"]
    assert "deploy/README.md" in check["fix"]


def test_closed_mqtt_port(doctor: Doctor) -> None:
    port = free_port()
    outcome = doctor(f"mqtt.port={port}")
    assert outcome.failed == {f"endpoint mqtt 127.0.0.1:{port}", *METRICS}
    assert outcome.skipped == {"mqtt login"}
    check = outcome.checks[f"endpoint mqtt 127.0.0.1:{port}"]
    assert "connection refused" in check["detail"]
    assert "mqtt.host/mqtt.port" in check["fix"]


def test_missing_database(doctor: Doctor) -> None:
    outcome = doctor("postgres.database=nope")
    assert outcome.failed == {"database", *METRICS}
    assert outcome.skipped == {"database schema", "raw_data jsonb", "database roles", "timescaledb"}
    assert "has no database nope" in outcome.checks["database"]["detail"]
    assert "postgres.database" in outcome.checks["database"]["fix"]


def test_unmigrated_database(doctor: Doctor, empty_db: str) -> None:
    outcome = doctor(f"postgres.database={empty_db}")
    assert outcome.failed == {"database schema", *METRICS}
    assert outcome.skipped == {"raw_data jsonb"}
    assert "is not migrated" in outcome.checks["database schema"]["detail"]
    assert outcome.checks["database schema"]["fix"] == "`sensorpipe db migrate`"


def test_raw_data_not_jsonb(doctor: Doctor, provisioned: Path, empty_db: str, stack_settings: Settings) -> None:
    # Plain tables: TimescaleDB refuses to change a column's type once a hypertable has compression on.
    migrate = ("--set", f"postgres.database={empty_db}", "--set", "timescale.mode=off", "db", "migrate")
    migrated = sensorpipe(*migrate, config=provisioned)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    pg = stack_settings.postgres.model_copy(update={"database": empty_db})
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("alter table sensor_data alter column raw_data type text")
    outcome = doctor(f"postgres.database={empty_db}")
    assert outcome.failed == {"raw_data jsonb", *METRICS}
    assert "raw_data is text, not jsonb" in outcome.checks["raw_data jsonb"]["detail"]
    assert "type jsonb" in outcome.checks["raw_data jsonb"]["fix"]


def test_wrong_writer_password(doctor: Doctor) -> None:
    outcome = doctor("postgres.writer_password=not-the-password")
    assert outcome.failed == {"database roles", *METRICS}
    assert "`sensorpipe db migrate`" in outcome.checks["database roles"]["fix"]


def test_missing_bucket(doctor: Doctor) -> None:
    outcome = doctor("s3.bucket=no-such-bucket")
    assert outcome.failed == {"lake bucket", *METRICS}
    assert "no bucket 'no-such-bucket'" in outcome.checks["lake bucket"]["detail"]
    assert "s3.bucket" in outcome.checks["lake bucket"]["fix"]


def test_wrong_s3_keys(doctor: Doctor) -> None:
    outcome = doctor("s3.secret_key=wrong")
    assert outcome.failed == {"lake bucket", *METRICS}
    assert "s3.access_key / s3.secret_key" in outcome.checks["lake bucket"]["fix"]


def test_jars_not_fetched(doctor: Doctor, tmp_path: Path) -> None:
    outcome = doctor(f"stack.cache_dir={tmp_path}")
    assert outcome.failed == {"spark jars", *METRICS}
    assert "sensorpipe jars fetch" in outcome.checks["spark jars"]["fix"]


def test_no_java(doctor: Doctor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", "/nonexistent-java")
    outcome = doctor()
    assert outcome.failed == {"java", *METRICS}
    assert "has no bin/java" in outcome.checks["java"]["detail"]
    assert "openjdk-17-jre-headless" in outcome.checks["java"]["fix"]


def test_grafana_provisioning_is_checked_when_asked(
    doctor: Doctor, provisioned: Path, closed_ports: tuple[int, int], tmp_path: Path
) -> None:
    tree = tmp_path / "provisioning"
    exported = sensorpipe("grafana", "export", str(tree), config=provisioned)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    checks = doctor(grafana_dir=tree).checks
    assert checks["grafana provisioning"]["ok"], checks["grafana provisioning"]
    assert checks["grafana provisioning"]["problem"] == 10

    moved = "monitoring.prometheus_url=http://prometheus:9090"
    assert "grafana provisioning" not in doctor(moved).checks  # only with --grafana DIR
    flags = _flags(closed_ports, moved)
    stale = sensorpipe(*flags, "doctor", "--grafana", str(tree), config=provisioned, timeout_s=120)
    assert stale.returncode == 1
    line = next(line for line in stale.stdout.splitlines() if line.startswith("✗ grafana provisioning"))
    assert "not what the current settings give: datasources/sensorpipe.yaml" in line
    assert f"→ `sensorpipe grafana export {tree}`" in line


def test_timescaledb_check_names_the_version_the_database_uses(
    provisioned: Path, stack_settings: Settings, timescaledb: str
) -> None:
    check = check_timescale(stack_settings)
    assert (check.ok, check.detail) == (True, f"installed ({timescaledb})")


def test_timescaledb_installed_but_not_preloaded_is_informational_unless_required(
    timescaledb: str, unloaded_postgres: PrivatePostgres
) -> None:
    with new_database(unloaded_postgres.settings) as database:
        auto = unloaded_postgres.settings.model_copy(
            update={"postgres": unloaded_postgres.settings.postgres.model_copy(update={"database": database})}
        )
        required = auto.model_copy(update={"timescale": auto.timescale.model_copy(update={"mode": "on"})})
        informational, failure = check_timescale(auto), check_timescale(required)
    assert informational.ok
    assert f"installed on the server ({timescaledb}) but not preloaded: plain tables" in informational.detail
    assert not failure.ok
    assert failure.detail == f"TimescaleDB {timescaledb} is installed on the server but not preloaded"
    assert failure.fix is not None and "shared_preload_libraries" in failure.fix
