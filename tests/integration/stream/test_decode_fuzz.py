"""Decoding and validation fuzzed: 10,000 generated Kafka record values through Spark's `decode`, collected once.

Hypothesis generates the corpus (random bytes, readings with every JSON type in every field, truncated
JSON, huge numbers, NaN and Infinity literals, deep nesting, invalid UTF-8, base64 with bad padding,
envelopes inside envelopes, gateway arrays, values over `stream.max_payload_bytes`), biased towards the
edge cases it knows (empty strings, 0, -0.0, huge integers). The whole corpus is decoded in one
DataFrame, as one micro-batch would be, so a value that made Spark raise would fail the test.

Each record must end as valid readings or as rejects with a documented reason; a valid reading must meet
the data contract; an oversized record is rejected before parsing; the encoding Spark reports must be the
one `stream.encodings.detect` (what `sensorpipe doctor` uses) finds in plain Python; and the same corpus,
produced to Kafka and run through the real `sensorpipe stream`, must store exactly those readings and
those rejects.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sensorpipe.clients.kafka_client import client_config
from sensorpipe.clients.topics import create_topics
from sensorpipe.config import Settings, load_settings
from sensorpipe.config.settings import parse_assignments
from sensorpipe.simulator.readings import HUMIDITY_RANGE, TEMPERATURE_RANGE
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.s3 import ensure_bucket
from sensorpipe.stream.decode import REASONS, decode
from sensorpipe.stream.encodings import detect
from tests.support import free_port, sensorpipe

if TYPE_CHECKING:
    from pyspark.sql import Row, SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

CORPUS_SIZE = 10_000
MAX_BYTES = 2_048
KAFKA_TS = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KAFKA_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp,"
    " timestampType int, headers array<struct<key:string,value:binary>>"
)

# Any JSON value a field might hold, non-finite floats included (json.dumps writes NaN and Infinity).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-100, max_value=150),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
timestamps = st.one_of(
    st.floats(min_value=0, max_value=4e9),
    st.integers(min_value=-(10**13), max_value=10**14),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    json_values,
)
readings = st.fixed_dictionaries(
    {},
    optional={
        "sensor_id": st.one_of(st.text(max_size=12), st.integers(), json_values),
        "device_id": st.one_of(st.text(max_size=12), st.integers()),
        "timestamp": timestamps,
        "temperature": st.one_of(st.floats(min_value=-60, max_value=100), json_values),
        "humidity": st.one_of(st.floats(min_value=0, max_value=100), json_values),
        "extra": json_values,
    },
)


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def envelope(payload: Any) -> bytes:
    return dumps({"schema": {"type": "bytes", "optional": False}, "payload": payload})


def nested_envelopes(inner: bytes, depth: int) -> bytes:
    value: Any = json.loads(inner) if inner.strip().startswith((b"{", b"[")) else inner.decode("latin-1")
    for _ in range(depth):
        value = json.loads(envelope(value))
    return dumps(value)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A reading or a batch, then cut short, given a bad byte, or padded past the size limit."""
    data = dumps(draw(st.one_of(readings, st.lists(readings, max_size=4))))
    how = draw(st.sampled_from(["truncate", "bad_utf8", "oversize", "trailing"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "bad_utf8":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8"])) + data[at:]
    if how == "oversize":
        return data + b" " * (MAX_BYTES + 1 - len(data) + draw(st.integers(0, 64)))
    return data + draw(st.sampled_from([b"}", b"]", b" x", b",", b"\x00"]))


@st.composite
def wrapped(draw: st.DrawFn) -> bytes:
    """A reading in one of the wrappings producers use, some of them broken."""
    raw = dumps(draw(st.one_of(readings, st.lists(readings, max_size=3))))
    how = draw(st.sampled_from(["base64", "bad_padding", "quoted", "envelope", "nested", "base64_of_envelope"]))
    if how == "base64":
        return b64(raw)
    if how == "bad_padding":
        return b64(raw).rstrip(b"=") + draw(st.sampled_from([b"", b"=", b"===", b"=x"]))
    if how == "quoted":
        return dumps(b64(raw).decode())
    if how == "envelope":
        payload = draw(st.sampled_from([json.loads(raw), b64(raw).decode(), dumps(b64(raw).decode()).decode()]))
        return envelope(payload)
    if how == "nested":
        return nested_envelopes(raw, draw(st.integers(2, 3)))
    return b64(envelope(json.loads(raw)))


def deep(depth: int) -> bytes:
    return b'{"temperature": 20, "x": ' + b"[" * depth + b"]" * depth + b"}"


payloads = st.one_of(
    st.binary(max_size=300),
    readings.map(dumps),
    st.lists(readings, max_size=6).map(dumps),
    damaged(),
    wrapped(),
    st.integers(1, 3_000).map(deep),
    st.integers(300, 1_200).map(lambda n: b'{"temperature": 1' + b"0" * n + b"}"),
    st.sampled_from([b"NaN", b"Infinity", b'{"temperature": NaN}', b'{"humidity": -Infinity}', b"1e400", b"null"]),
    json_values.map(dumps),
)


def corpus(size: int) -> list[bytes]:
    """`size` values drawn from `payloads` (generation only: no shrinking, no example database)."""
    found: list[bytes] = []

    @settings(
        max_examples=size,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(payloads)
    def collect(value: bytes) -> None:
        found.append(value)

    collect()
    return found


@pytest.fixture(scope="module")
def settings_() -> Settings:
    return load_settings(
        {
            "spark": {"master": "local[2]", "shuffle_partitions": 1},
            "mqtt": {"topic": "sensors/+/data"},
            "readings": {"default_sensor_id": "default"},
            "stream": {"max_payload_bytes": MAX_BYTES},
        }
    )


@pytest.fixture(scope="module")
def fuzzed(spark: SparkSession, settings_: Settings) -> tuple[list[bytes], dict[int, list[Row]]]:
    from pyspark.sql import functions as F

    values = corpus(CORPUS_SIZE)
    no_headers: list[tuple[str, bytearray]] = []
    rows = [(bytearray(b"k"), bytearray(v), "sensor-data", 0, i, KAFKA_TS, 0, no_headers) for i, v in enumerate(values)]
    decoded = decode(spark.createDataFrame(rows, KAFKA_SCHEMA), settings_)
    columns = ("offset", "element", "encoding", "reject_reason", "sensor_id", "temperature", "humidity")
    by_offset: dict[int, list[Row]] = {}
    extra = (F.col("time").isNotNull().alias("has_time"), F.unix_micros("time").alias("time_us"))
    for row in decoded.select(*columns, *extra).collect():
        by_offset.setdefault(row["offset"], []).append(row)
    return values, by_offset


def failures(message: str, bad: list[tuple[bytes, Any]]) -> str:
    shown = "\n".join(f"  {value[:200]!r} → {outcome}" for value, outcome in bad[:10])
    return f"{len(bad)} record(s) {message}:\n{shown}"


def test_the_corpus_is_large_and_varied(fuzzed: tuple[list[bytes], dict[int, list[Row]]]) -> None:
    values, by_offset = fuzzed
    assert len(values) == CORPUS_SIZE
    assert len(set(values)) > CORPUS_SIZE // 2
    reasons = {row["reject_reason"] for rows in by_offset.values() for row in rows}
    valid = sum(1 for rows in by_offset.values() for row in rows if row["reject_reason"] is None)
    assert valid > 100, "the corpus must hold valid readings too"
    assert len(reasons - {None}) >= 8, reasons


def test_every_record_ends_as_readings_or_rejects_with_a_documented_reason(
    fuzzed: tuple[list[bytes], dict[int, list[Row]]],
) -> None:
    values, by_offset = fuzzed
    missing = [(values[i], "no row") for i in range(len(values)) if i not in by_offset]
    assert not missing, failures("left no row at all", missing)
    unknown = [(values[i], r["reject_reason"]) for i, rows in by_offset.items() for r in rows]
    unknown = [(v, reason) for v, reason in unknown if reason is not None and reason not in REASONS]
    assert not unknown, failures("were rejected for an undocumented reason", unknown)


def test_valid_readings_meet_the_data_contract(fuzzed: tuple[list[bytes], dict[int, list[Row]]]) -> None:
    values, by_offset = fuzzed
    bad = []
    for offset, rows in by_offset.items():
        for row in rows:
            if row["reject_reason"] is not None:
                continue
            values_present = [v for v in (row["temperature"], row["humidity"]) if v is not None]
            problems = [
                not row["sensor_id"],
                not row["has_time"],
                not values_present,
                any(not math.isfinite(v) for v in values_present),
                row["temperature"] is not None
                and not TEMPERATURE_RANGE[0] <= row["temperature"] <= TEMPERATURE_RANGE[1],
                row["humidity"] is not None and not HUMIDITY_RANGE[0] <= row["humidity"] <= HUMIDITY_RANGE[1],
            ]
            if any(problems):
                bad.append((values[offset], row.asDict()))
    assert not bad, failures("were accepted against the data contract", bad)


def test_oversized_records_are_rejected_before_parsing(fuzzed: tuple[list[bytes], dict[int, list[Row]]]) -> None:
    values, by_offset = fuzzed
    oversized = [i for i, v in enumerate(values) if len(v) > MAX_BYTES]
    assert len(oversized) > 50
    bad = [
        (values[i], [(r["reject_reason"], r["encoding"]) for r in by_offset[i]])
        for i in oversized
        if [(r["reject_reason"], r["encoding"]) for r in by_offset[i]] != [("payload_too_large", "unknown")]
    ]
    assert not bad, failures("over the size limit were not rejected as payload_too_large", bad)


def test_spark_and_the_python_detector_agree_on_every_encoding(
    fuzzed: tuple[list[bytes], dict[int, list[Row]]],
) -> None:
    values, by_offset = fuzzed
    bad = []
    for offset, rows in by_offset.items():
        spark_label = next(r["encoding"] for r in rows if r["element"] == 0)
        python_label = detect(values[offset], MAX_BYTES).encoding
        if spark_label != python_label:
            bad.append((values[offset], f"Spark {spark_label}, Python {python_label}"))
    assert not bad, failures("were labelled differently by Spark and by stream.encodings.detect", bad)


def test_the_real_stream_job_stores_and_rejects_the_corpus_as_decode_does(
    fuzzed: tuple[list[bytes], dict[int, list[Row]]], stack_config: Path, empty_db: str
) -> None:
    """The same corpus through Kafka and `sensorpipe stream`: the readings and rejects it stores are those above."""
    values, by_offset = fuzzed
    tag = uuid.uuid4().hex[:8]
    flags = {
        "kafka.topic": f"fuzz-{tag}",
        "kafka.dlq_topic": f"fuzz-{tag}-dlq",
        "kafka.retention_ms": "-1",  # the records carry KAFKA_TS, long past the default 7 days' retention
        "s3.bucket": f"fuzz-{tag}",
        "postgres.database": empty_db,
        "stream.metrics_port": str(free_port()),
        "stream.max_payload_bytes": str(MAX_BYTES),
        "mqtt.topic": "sensors/+/data",
        "readings.default_sensor_id": "default",
    }
    settings = load_settings(parse_assignments([f"{k}={v}" for k, v in flags.items()]), stack_config)
    migrate(settings)
    ensure_bucket(settings.s3)
    create_topics(settings.kafka)
    producer = Producer(client_config(settings.kafka, **{"enable.idempotence": True}))
    kafka_ms = round(KAFKA_TS.timestamp() * 1000)  # as in the decode above: a reading without a time gets this one
    for value in values:
        producer.produce(settings.kafka.topic, value, timestamp=kafka_ms)
        producer.poll(0)
    assert producer.flush(60) == 0

    result = sensorpipe(
        *(arg for k, v in flags.items() for arg in ("--set", f"{k}={v}")),
        "stream",
        "--available-now",
        config=stack_config,
        timeout_s=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    rows = [row for rows in by_offset.values() for row in rows]
    expected_keys = {(r["sensor_id"], r["time_us"]) for r in rows if r["reject_reason"] is None}
    expected_rejects = Counter(r["reject_reason"] for r in rows if r["reject_reason"] is not None)
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        stored = conn.execute("select count(*) from sensor_data").fetchone()
        grouped = conn.execute("select reason, count(*) from sensor_rejects group by 1").fetchall()
    rejects: dict[str, int] = {reason: n for reason, n in grouped}
    assert stored == (len(expected_keys),)
    assert Counter(rejects) == expected_rejects
