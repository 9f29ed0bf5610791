"""The stream job's partition writer on its own, against the session's real PostgreSQL and Kafka."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pytest

from sensorpipe.clients.topics import create_topics
from sensorpipe.config import Settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.contract.reference import Record, Rules
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.staging import read_staged, staged_files
from sensorpipe.stream.dead_letters import DeadLetterError
from sensorpipe.stream.decode import DECODED_SCHEMA, ENCODING, decode_batch
from sensorpipe.stream.sinks import REJECTED, SKIPPED, STORED, Tally, readings_writer
from tests.decode_support import kafka_batch
from tests.ingest_support import read_topic

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def settings(stack_settings: Settings) -> Settings:
    """The session stack, with a dead-letter topic of this module's own."""
    migrate(stack_settings)
    topic = f"test-sinks-{uuid.uuid4().hex[:8]}"
    kafka = stack_settings.kafka.model_copy(update={"topic": topic, "dlq_topic": f"{topic}-dlq"})
    create_topics(kafka)
    return stack_settings.model_copy(update={"kafka": kafka})


def kafka_rows(good: str, bad: str, first_offset: int = 0) -> pa.RecordBatch:
    """Three valid readings of `good` and one reading of `bad` out of range (offset 9), as Kafka rows."""
    values = [
        {"sensor_id": good, "timestamp": (T0 + timedelta(seconds=i)).timestamp(), "temperature": 21.5} for i in range(3)
    ]
    offsets = [first_offset + i for i in range(3)]
    values.append({"sensor_id": bad, "temperature": 999})
    offsets.append(9)
    return kafka_batch(
        [
            Record(json.dumps(v).encode(), T0, topic=f"topic-{bad}", offset=o)
            for v, o in zip(values, offsets, strict=True)
        ]
    )


def test_the_partition_writer_stores_publishes_rejects_and_stages_the_stored_readings(settings: Settings) -> None:
    good, bad = f"test-{uuid.uuid4()}", f"test-{uuid.uuid4()}"
    batch = kafka_rows(good, bad)
    batch_id = uuid.uuid4().int % 10**9
    write = readings_writer(settings, batch_id)
    forwarded_again = kafka_rows(good, bad, first_offset=100).slice(0, 3)
    valid = decode_batch(batch, Rules.from_settings(settings)).slice(0, 3)

    # A batch given twice (a replay), then its readings at other offsets (the bridge forwarded them twice).
    tallied = pa.Table.from_batches(list(write([batch, batch, forwarded_again]))).to_pylist()
    tally = Tally().add((row["kind"], row["label"], row["rows"]) for row in tallied)

    staged = [path for path in staged_files(settings) if f"batch-{batch_id:012d}-" in path]
    assert len(staged) == 1, "one file per task and batch"
    rows = read_staged(settings, staged, pa.schema([DECODED_SCHEMA.field(name) for name in READING_COLUMNS]))
    assert rows.to_pylist() == [{name: row[name] for name in READING_COLUMNS} for row in 2 * valid.to_pylist()], (
        "the valid readings, each time their own records were given; nothing of the reject or of the copies"
    )
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as owner:
        stored = owner.execute("select count(*) from sensor_data where sensor_id = %s", (good,)).fetchone()
        rejects = owner.execute(
            "select reason, kafka_offset from sensor_rejects where kafka_topic = %s", (f"topic-{bad}",)
        ).fetchall()
    assert stored == (3,)
    assert rejects == [("out_of_range", 9)]
    assert tally.of(ENCODING) == {"raw_json": 11}
    assert tally.of(REJECTED) == {"out_of_range": 2}
    assert tally.counts[(STORED, "sensor_data")] == 3 and tally.counts[(SKIPPED, "sensor_data")] == 6
    assert tally.rows("sensor_rejects") == 2

    dead_letters = read_topic(settings, settings.kafka.dlq_topic, 2)
    assert [r.key for r in dead_letters] == [f"topic-{bad}:0:9:0".encode()] * 2, "a replay republishes, same key"
    letter = json.loads(dead_letters[0].value)
    assert letter["reason"] == "out_of_range" and letter["detail"].startswith("temperature 999 outside")
    assert json.loads(base64.b64decode(letter["payload_base64"])) == {"sensor_id": bad, "temperature": 999}


def test_a_dead_letter_topic_kafka_refuses_fails_the_partition_with_the_cause(settings: Settings) -> None:
    """The task fails (its micro-batch runs again) rather than lose a reject from the dead-letter topic."""
    kafka = settings.kafka.model_copy(update={"dlq_topic": f"missing-{uuid.uuid4().hex[:8]}"})
    write = readings_writer(settings.model_copy(update={"kafka": kafka}), 0)

    with pytest.raises(DeadLetterError) as caught:
        list(write([kafka_rows(f"test-{uuid.uuid4()}", f"test-{uuid.uuid4()}")]))

    message = str(caught.value)
    assert f"Kafka at {kafka.bootstrap_servers} did not take 1 reject(s) for topic {kafka.dlq_topic}" in message
    assert "sensorpipe topics create" in message


def test_the_partition_writer_keeps_one_database_connection_across_tasks(settings: Settings, empty_db: str) -> None:
    """A Python worker runs task after task: it opens its connection once, not per task and micro-batch.

    On a database of its own: Spark's Python workers of earlier tests keep theirs to the session's.
    """
    own = settings.model_copy(update={"postgres": settings.postgres.model_copy(update={"database": empty_db})})
    migrate(own)

    def stream_backends() -> list[int]:
        with psycopg.connect(own.postgres.dsn(), autocommit=True) as owner:
            rows = owner.execute(
                "select pid from pg_stat_activity where application_name = 'sensorpipe-stream'"
                " and datname = current_database()"
            ).fetchall()
        return [pid for (pid,) in rows]

    def task(batch_id: int) -> None:
        list(readings_writer(own, batch_id)([kafka_rows(f"test-{uuid.uuid4()}", f"test-{uuid.uuid4()}")]))

    task(uuid.uuid4().int % 10**9)
    first = stream_backends()
    task(uuid.uuid4().int % 10**9)
    assert len(first) == 1, "the connection stays open after its task"
    assert stream_backends() == first, "the same backend served the next micro-batch's task"
