"""`sensorpipe stream` end to end on the real stack: Kafka → Spark → PostgreSQL and the S3 lake, exactly once."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Producer

from sensorpipe.config import Settings
from sensorpipe.ingest.kafka_client import client_config
from sensorpipe.ingest.topics import create_topics
from sensorpipe.storage.lake import RAW, read_dataset
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.s3 import ensure_bucket
from tests.ingest_support import read_topic
from tests.support import free_port, sensorpipe

pytestmark = [pytest.mark.integration, pytest.mark.spark]

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class Lane:
    """A topic, sensor ids, a lake bucket (with the checkpoints beside it) and a metrics port of this test's own.

    Each lane needs its own lake: Spark's file sink log lives in the lake, and a fresh checkpoint
    writing into a lake that another checkpoint's log already covers would have its batches skipped.
    """

    def __init__(self, settings: Settings) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.topic = f"stream-{self.tag}"
        self.bucket = f"lake-{self.tag}"
        self.metrics_port = free_port()
        self.settings = settings.model_copy(update={"s3": settings.s3.model_copy(update={"bucket": self.bucket})})
        ensure_bucket(self.settings.s3)

    def sensor(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def flags(self) -> list[str]:
        pairs = {
            "kafka.topic": self.topic,
            "kafka.dlq_topic": f"{self.topic}-dlq",
            "s3.bucket": self.bucket,
            "stream.metrics_port": str(self.metrics_port),
        }
        return [arg for key, value in pairs.items() for arg in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def migrated(stack_settings: Settings) -> Settings:
    migrate(stack_settings)
    return stack_settings


@pytest.fixture
def lane(migrated: Settings) -> Iterator[Lane]:
    yield Lane(migrated)


def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    """Every value into `topic`, each confirmed by Kafka (a failed delivery fails the test)."""
    create_topics(settings.kafka.model_copy(update={"topic": topic, "dlq_topic": f"{topic}-dlq"}))
    failures: list[str] = []
    producer = Producer(client_config(settings.kafka, **{"enable.idempotence": True}))
    for value in values:
        producer.produce(topic, value, on_delivery=lambda error, _m: failures.append(str(error)) if error else None)
    assert producer.flush(30) == 0
    assert not failures, failures[:3]


def reading(sensor: str, index: int) -> dict[str, object]:
    moment = T0 + timedelta(seconds=index)
    return {"sensor_id": sensor, "timestamp": moment.timestamp(), "temperature": 20.5, "humidity": 40.0}


def encodings(payload: dict[str, object]) -> dict[str, bytes]:
    """The same reading in every encoding the job must accept (DESIGN.md "Data contract")."""
    raw = json.dumps(payload).encode()
    b64 = base64.b64encode(raw).decode()
    return {
        "raw_json": raw,
        "base64_json": b64.encode(),
        "quoted_base64": json.dumps(b64).encode(),
        "envelope_base64": json.dumps({"schema": {"type": "bytes"}, "payload": b64}).encode(),
    }


def run_stream(config: Path, lane: Lane) -> dict[str, dict[str, int]]:
    """`stream --available-now --json`: what Kafka holds now, then the job's totals."""
    result = sensorpipe(*lane.flags(), "stream", "--available-now", "--json", config=config, timeout_s=600)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    totals: dict[str, dict[str, int]] = json.loads(result.stdout)
    return totals


def stored_keys(settings: Settings, tag: str) -> list[tuple[str, datetime]]:
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "select sensor_id, time from sensor_data where sensor_id like %s order by 1, 2", (f"{tag}-%",)
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_every_encoding_lands_once_in_database_and_lake_and_invalid_ones_are_rejected(
    stack_config: Path, migrated: Settings, lane: Lane
) -> None:
    per_encoding = 500
    values: list[bytes] = []
    expected: set[tuple[str, datetime]] = set()
    for label in ("raw_json", "base64_json", "quoted_base64", "envelope_base64"):
        sensor = lane.sensor(label)
        for index in range(per_encoding):
            values.append(encodings(reading(sensor, index))[label])
            expected.add((sensor, T0 + timedelta(seconds=index)))
    gateway = [reading(lane.sensor("gw-a"), 1), {**reading(lane.sensor("gw-b"), 1), "temperature": 999}]
    values.append(json.dumps(gateway).encode())
    expected.add((lane.sensor("gw-a"), T0 + timedelta(seconds=1)))
    invalid = [
        b"plain words",
        b"",
        b'{"truncated": ',
        json.dumps({**reading(lane.sensor("bad"), 1), "humidity": "wet"}).encode(),
    ]
    values += invalid
    produce(migrated, lane.topic, values)

    totals = run_stream(stack_config, lane)

    assert set(stored_keys(migrated, lane.tag)) == expected
    assert totals["encodings"] == {
        "raw_json": per_encoding + 3,  # with the gateway batch, the truncated and the wrong-typed reading
        "base64_json": per_encoding + 1,  # "plain words" looks like base64, and does not decode to JSON
        "quoted_base64": per_encoding,
        "envelope_base64_json": per_encoding,
        "unknown": 1,  # the empty payload
    }
    assert totals["rejects"] == {"out_of_range": 1, "empty": 1, "undecodable": 1, "not_json": 1, "wrong_type": 1}
    assert totals["sink_rows"] == {"database": len(expected)}
    assert len(stored_keys(migrated, lane.tag)) == len(expected)
    lake = read_dataset(lane.settings, RAW, columns=["sensor_id", "time"]).to_pylist()
    in_lake = [(r["sensor_id"], r["time"]) for r in lake if r["sensor_id"].startswith(lane.tag)]
    assert sorted(in_lake) == sorted(expected)
    with psycopg.connect(migrated.postgres.dsn(), autocommit=True) as conn:
        reasons = conn.execute(
            "select reason, element from sensor_rejects where kafka_topic = %s order by kafka_offset, element",
            (lane.topic,),
        ).fetchall()
    assert sorted(reasons) == [
        ("empty", 0),
        ("not_json", 0),
        ("out_of_range", 1),
        ("undecodable", 0),
        ("wrong_type", 0),
    ]
    records = read_topic(migrated, f"{lane.topic}-dlq", len(reasons))
    dead_letters = [json.loads(r.value) for r in records]
    assert sorted(d["reason"] for d in dead_letters) == sorted(r[0] for r in reasons)
    assert {d["kafka_topic"] for d in dead_letters} == {lane.topic}
    keys = {f"{d['kafka_topic']}:{d['kafka_partition']}:{d['kafka_offset']}:{d['element']}" for d in dead_letters}
    assert {r.key.decode() for r in records if r.key} == keys

    run_stream(stack_config, lane)  # a restart finds its checkpoints: nothing is stored twice
    assert len(stored_keys(migrated, lane.tag)) == len(expected)


@dataclass
class Job:
    process: subprocess.Popen[str]
    log: Path

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


def start_stream(config: Path, lane: Lane, *extra: str) -> Job:
    """The job as its own process group (driver, JVM, Python workers), so that SIGKILL takes all of it."""
    log = Path(tempfile.mkstemp(prefix=f"stream-{lane.tag}-", suffix=".log")[1])
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sensorpipe", "--config", str(config), *lane.flags(), *extra, "stream"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    return Job(process, log)


def wait_for_rows(settings: Settings, tag: str, at_least: int, job: Job) -> None:
    deadline = time.monotonic() + 300
    while len(stored_keys(settings, tag)) < at_least:
        if job.process.poll() is not None:
            raise AssertionError(
                f"the job exited ({job.process.returncode}) before storing {at_least} rows:\n{job.tail()}"
            )
        assert time.monotonic() < deadline, f"fewer than {at_least} rows after 300 s:\n{job.tail()}"
        time.sleep(0.5)


def test_sigkill_twice_mid_run_then_restart_stores_every_reading_exactly_once(
    stack_config: Path, migrated: Settings, lane: Lane
) -> None:
    total = 20_000
    sensors = [lane.sensor(f"k{i}") for i in range(20)]
    expected = {(sensors[i % 20], T0 + timedelta(milliseconds=i)) for i in range(total)}
    values = [
        json.dumps(
            {"sensor_id": sensors[i % 20], "timestamp": (T0 + timedelta(milliseconds=i)).timestamp(), "humidity": 50}
        ).encode()
        for i in range(total)
    ]
    produce(migrated, lane.topic, values)
    slow = ("--set", "stream.max_offsets_per_trigger=1000")
    for at_least in (2_000, 9_000):
        job = start_stream(stack_config, lane, *slow)
        try:
            wait_for_rows(migrated, lane.tag, at_least, job)
        finally:
            os.killpg(job.process.pid, signal.SIGKILL)
            job.process.wait(30)
            job.log.unlink()
    run_stream(stack_config, lane)

    stored = stored_keys(migrated, lane.tag)
    assert len(stored) == total and set(stored) == expected
    lake = read_dataset(lane.settings, RAW, columns=["sensor_id", "time"]).to_pylist()
    in_lake = [(r["sensor_id"], r["time"]) for r in lake if r["sensor_id"].startswith(lane.tag)]
    assert len(in_lake) == total, f"{len(in_lake) - len(set(in_lake))} duplicates in the lake"
    assert set(in_lake) == expected


def test_late_readings_update_their_minute_within_the_watermark_and_are_dropped_beyond(
    stack_config: Path, migrated: Settings, lane: Lane
) -> None:
    sensor = lane.sensor("late")

    def at(minute: int, second: int) -> bytes:
        moment = T0 + timedelta(minutes=minute, seconds=second)
        return json.dumps({"sensor_id": sensor, "timestamp": moment.timestamp(), "humidity": 50.0}).encode()

    produce(migrated, lane.topic, [at(0, 0), at(0, 1), at(0, 2), at(4, 10)])
    run_stream(stack_config, lane)  # the watermark is now 10:04:10 minus 2 minutes = 10:02:10
    produce(migrated, lane.topic, [at(4, 20), at(0, 30)])  # within the watermark, and beyond it
    totals = run_stream(stack_config, lane)

    with psycopg.connect(migrated.postgres.dsn(), autocommit=True) as conn:
        minutes = conn.execute(
            "select bucket, readings from sensor_data_1m where sensor_id = %s order by bucket", (sensor,)
        ).fetchall()
        readings = conn.execute("select count(*) from sensor_data where sensor_id = %s", (sensor,)).fetchone()
    assert minutes == [(T0, 3), (T0 + timedelta(minutes=4), 2)]
    assert readings == (6,), "every reading is stored; only the aggregates skip the one beyond the watermark"
    assert totals["dropped_late"].get("aggregates", 0) >= 1
