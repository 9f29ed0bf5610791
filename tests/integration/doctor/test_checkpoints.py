"""Doctor's checkpoint checks (problem 7) on checkpoints the real stream job wrote, broken one way at a time.

The job runs once for the module (about 30 s) on a topic, lake and checkpoints of the module's own. The last
test deletes records from that topic for good, so it stays last.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import OFFSET_END, TopicPartition
from confluent_kafka.admin import AdminClient

from sensorpipe.clients.kafka_client import client_config, watermarks
from sensorpipe.config import Settings
from sensorpipe.stream.checkpoint_log import kafka_offsets, read_checkpoint
from sensorpipe.stream.checkpoints import QUERIES, checkpoint_filesystem, checkpoint_uri
from tests.doctor_support import METRICS, Doctor
from tests.stream_support import Lane, produce, reading, run_stream

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]

READINGS = 12
CHECKS = {f"checkpoint {query}" for query in QUERIES}


def _values(lane: Lane, name: str, count: int) -> list[bytes]:
    return [json.dumps(reading(lane.sensor(name), i)).encode() for i in range(count)]


@pytest.fixture(scope="module")
def lane(provisioned: Path, stack_settings: Settings, spark: SparkSession) -> Lane:
    """A topic, lake and checkpoints of this module's own, with checkpoints `stream --available-now` wrote."""
    lane = Lane(stack_settings)
    produce(lane.settings, lane.topic, _values(lane, "a", READINGS))
    run_stream(spark, lane)
    return lane


def _sets(lane: Lane) -> list[str]:
    """The lane's `--set` values (its topics, bucket and metrics port), for doctor."""
    return lane.flags()[1::2]


def test_the_reader_reads_the_checkpoint_the_job_wrote(lane: Lane) -> None:
    log = read_checkpoint(lane.settings, "readings")
    assert log is not None and log.latest is not None
    assert uuid.UUID(str(log.query_id))
    assert log.committed == log.latest.batch
    assert log.resume == log.latest
    assert len(log.latest.sources) == 1
    offsets = kafka_offsets(str(log.latest.sources[0]))
    assert set(offsets) == {lane.topic}
    assert offsets[lane.topic] == {
        p: high for p, (_low, high) in (watermarks(lane.settings.kafka, lane.topic) or {}).items()
    }
    assert sum(offsets[lane.topic].values()) == READINGS
    for query in ("aggregates_lake",):
        aggregates = read_checkpoint(lane.settings, query)
        assert aggregates is not None and aggregates.latest is not None
        delta = json.loads(str(aggregates.latest.sources[0]))  # Delta's streaming source offset
        assert delta["reservoirId"] and delta["reservoirVersion"] >= 1, delta


def test_healthy_checkpoints_pass(lane: Lane, doctor: Doctor) -> None:
    outcome = doctor(*_sets(lane))
    assert outcome.failed == METRICS, outcome.checks
    assert set(outcome.checks) >= CHECKS
    readings = outcome.checks["checkpoint readings"]
    assert readings["problem"] == 7
    assert readings["detail"].endswith(f", offsets of {lane.topic} retained, 0 record(s) behind"), readings
    assert readings["detail"].startswith("batch ")
    assert "of the lake's raw" in outcome.checks["checkpoint aggregates_lake"]["detail"]


def test_a_checkpoint_of_another_topic(lane: Lane, doctor: Doctor) -> None:
    other = f"other-{lane.tag}"
    produce(lane.settings, other, _values(lane, "other", 1))
    outcome = doctor(*_sets(lane), f"kafka.topic={other}")
    assert outcome.failed == {"checkpoint readings", *METRICS}, outcome.checks
    check = outcome.checks["checkpoint readings"]
    assert (
        f"was written for topic {lane.topic}, the job now reads {other} (kafka.topic changed since)" in check["detail"]
    )
    assert check["fix"].startswith(
        f"set kafka.topic back to {lane.topic}, or start over with `sensorpipe stream --reset`"
    )


def test_a_corrupted_offsets_file(lane: Lane, doctor: Doctor) -> None:
    log = read_checkpoint(lane.settings, "readings")
    assert log is not None and log.latest is not None
    uri = f"{checkpoint_uri(lane.settings, 'readings')}/offsets/{log.latest.batch}"
    filesystem, path = checkpoint_filesystem(lane.settings, uri)
    with filesystem.open_input_stream(path) as stream:
        original = stream.read()
    try:
        with filesystem.open_output_stream(path) as out:
            out.write(original[: len(original) // 2])  # a write cut short
        outcome = doctor(*_sets(lane))
    finally:
        with filesystem.open_output_stream(path) as out:
            out.write(original)
    assert outcome.failed == {"checkpoint readings", *METRICS}, outcome.checks
    check = outcome.checks["checkpoint readings"]
    assert check["detail"].startswith(f"unreadable: {uri} ")
    assert check["fix"].startswith(
        "restore the checkpoint from a backup, or start over with `sensorpipe stream --reset`"
    )


def test_offsets_kafka_no_longer_retains(lane: Lane, doctor: Doctor) -> None:
    """Records the job has not read are deleted (as retention would, while it was stopped): last, it is for good."""
    produce(lane.settings, lane.topic, _values(lane, "late", 5))
    admin = AdminClient(client_config(lane.settings.kafka))
    marks = watermarks(lane.settings.kafka, lane.topic) or {}
    futures = admin.delete_records([TopicPartition(lane.topic, p, OFFSET_END) for p in marks], request_timeout=30)
    for future in futures.values():
        future.result()
    outcome = doctor(*_sets(lane))
    assert outcome.failed == {"checkpoint readings", *METRICS}, outcome.checks
    check = outcome.checks["checkpoint readings"]
    assert f"resumes {lane.topic} at offsets Kafka no longer retains (partition " in check["detail"]
    assert check["detail"].endswith(": 5 record(s) deleted by retention before the job read them")
    assert "accept the gap with `sensorpipe stream --reset`" in check["fix"]
    assert "kafka.retention_ms" in check["fix"]
