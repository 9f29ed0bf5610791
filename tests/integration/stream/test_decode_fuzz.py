"""Decoding and validation fuzzed: 4,000 generated Kafka records through the stream job's decode.

Hypothesis generates the corpus (random bytes, readings with every JSON type in every field, truncated
JSON, huge numbers, NaN and Infinity literals, deep nesting, invalid UTF-8, base64 with bad padding,
envelopes inside envelopes, gateway arrays, values over `stream.max_payload_bytes`, timestamps in every
ISO-8601 spelling), each with the bridge's headers or odd ones or none (the MQTT topic, the receive time)
and a Kafka timestamp, biased towards the edge cases it knows (empty strings, 0, -0.0, huge integers).
The whole corpus is decoded in one Arrow batch, as one partition of a micro-batch would be, so a value
that made the decode raise would fail the test.

Every record must come out exactly as the data contract's reference decoder (contract/reference.py) says:
the same encoding, and per element the same reading (sensor, time, each measurement, raw_data) or the
same reject (reason, payload). Valid readings must also meet the contract
on their own; an oversized record is rejected before parsing; and the same corpus, produced to Kafka and
run through the real `sensorpipe stream`, must store exactly those readings and those rejects.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
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
from sensorpipe.contract.headers import HEADER_RECEIVED_AT, HEADER_TOPIC
from sensorpipe.contract.json_text import ABSENT, has_nul, parse
from sensorpipe.contract.measurements import MEASUREMENTS
from sensorpipe.contract.reasons import REASONS
from sensorpipe.contract.reference import Record, Rules
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.s3 import ensure_bucket
from sensorpipe.stream.decode import decode_batch
from sensorpipe.stream.runner import run_job
from tests.decode_support import Row, disagreements, kafka_batch, rows_by_offset
from tests.support import free_port

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]

CORPUS_SIZE = 4_000
"""Hypothesis draws about 200 records a second on one core: the module stays near 90 s."""
MAX_BYTES = 2_048
SUBSCRIPTION = "sensors/+/data"
KAFKA_TS = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# Any JSON value a field might hold, non-finite floats included (json.dumps writes NaN and Infinity).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-100, max_value=150),
    st.text(max_size=20),
    # a NUL (jsonb refuses it), an escaped backslash before u0000 (no NUL), a string that looks like a reading
    st.sampled_from(["\x00", "a\\u0000", '{"temperature": 1}']),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """ISO-8601 in its spellings: T, t or a space; with or without seconds and a fraction; every kind of offset."""
    m = draw(st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)))
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}{draw(st.sampled_from('Tt '))}{m.hour:02d}:{m.minute:02d}"
    if draw(st.booleans()):
        text += f":{m.second:02d}"
        digits = draw(st.integers(0, 10))
        text += "." + f"{m.microsecond:06d}{draw(st.integers(0, 9999)):04d}"[:digits] if digits else ""
    hours, minutes = draw(st.integers(0, 19)), draw(st.integers(0, 60))
    return text + draw(st.sampled_from(["Z", "z", "", f"+{hours:02d}:{minutes:02d}", f"-{hours:02d}{minutes:02d}"]))


timestamps = st.one_of(
    st.floats(min_value=0, max_value=4e9),
    st.integers(min_value=-(10**13), max_value=10**14),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    iso_texts(),
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
    how = draw(st.sampled_from(["truncate", "bad_utf8", "oversize", "trailing", "spaced"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "bad_utf8":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8"])) + data[at:]
    if how == "oversize":
        return data + b" " * (MAX_BYTES + 1 - len(data) + draw(st.integers(0, 64)))
    if how == "spaced":
        return (
            draw(st.sampled_from([b" ", b"\n", b"\t", b"\x0c", b"\r\n "])) + data + draw(st.sampled_from([b"", b" \n"]))
        )
    # The last ones close Spark's own wrapper `[text,…]` early: the rest must not be ignored.
    return data + draw(st.sampled_from([b"}", b"]", b" x", b",", b"\x00", b", 0] x", b",0]"]))


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
    # numbers that Spark writes again differently where it renders the JSON (batches, envelopes)
    st.sampled_from(
        [b'{"temperature": 2, "x": 1e400, "y": 1' + b"0" * 400 + b"}", b'{"temperature": 21.50e0}']
    ).flatmap(
        lambda text: st.sampled_from(
            [text, b" " + text, b"[" + text + b"]", b'{"schema": 1, "payload": ' + text + b"}"]
        )
    ),
    json_values.map(dumps),
)


ids = st.one_of(st.text(max_size=8), st.sampled_from(["s-1", "a/b", "x\n", "", " "]))
topics = st.one_of(
    ids.map(lambda sensor: f"sensors/{sensor}/data".encode()),
    st.sampled_from([b"sensors/data", b"sensors/s-1/data\n", b"elsewhere/s-1/data", b"sensors/\xff/data", b""]),
    st.binary(max_size=20),
)
received = st.one_of(
    st.integers(min_value=0, max_value=253_402_300_800_000).map(lambda ms: str(ms).encode()),
    st.sampled_from([b" 1712921700000", b"+1712921700000", b"-5", b"1e12", b"1712921700000.0", b"9" * 25, b"\xff"]),
    st.binary(max_size=12),
)
header_lists = st.lists(
    st.one_of(
        st.tuples(st.just(HEADER_TOPIC), st.one_of(st.none(), topics)),
        st.tuples(st.just(HEADER_RECEIVED_AT), st.one_of(st.none(), received)),
        st.tuples(st.text(max_size=5), st.binary(max_size=5)),
    ),
    max_size=3,
)
kafka_times = st.one_of(
    st.just(KAFKA_TS),
    # In the past: Kafka refuses timestamps much ahead of its clock (message.timestamp.after.max.ms).
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)  # Kafka keeps milliseconds
    ),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, tuple[tuple[str, bytes | None], ...], datetime]:
    """A value, the headers (the bridge's, odd ones, none) and the Kafka timestamp of one record."""
    return draw(payloads), tuple(draw(header_lists)), draw(kafka_times)


def corpus(size: int) -> list[Record]:
    """`size` records drawn from `records` (generation only: no shrinking, no example database)."""
    found: list[Record] = []

    @settings(
        max_examples=size,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(records())
    def collect(drawn: tuple[bytes, tuple[tuple[str, bytes | None], ...], datetime]) -> None:
        value, headers, timestamp = drawn
        found.append(Record(value, timestamp, headers, "sensor-data", 0, len(found)))

    collect()
    return found


@pytest.fixture(scope="module")
def settings_() -> Settings:
    return load_settings(
        {
            "mqtt": {"topic": SUBSCRIPTION},
            "readings": {"default_sensor_id": "default"},
            "stream": {"max_payload_bytes": MAX_BYTES},
        }
    )


Fuzzed = tuple[list[Record], dict[int, list[Row]]]


@pytest.fixture(scope="module")
def fuzzed(settings_: Settings) -> Fuzzed:
    found = corpus(CORPUS_SIZE)
    return found, rows_by_offset(decode_batch(kafka_batch(found), Rules.from_settings(settings_)))


def failures(message: str, bad: list[tuple[bytes | None, Any]]) -> str:
    shown = "\n".join(f"  {(value or b'')[:200]!r} → {outcome}" for value, outcome in bad[:10])
    return f"{len(bad)} record(s) {message}:\n{shown}"


def test_the_corpus_is_large_and_varied(fuzzed: Fuzzed) -> None:
    records, by_offset = fuzzed
    assert len(records) == CORPUS_SIZE
    assert len({(r.value, r.headers) for r in records}) > CORPUS_SIZE // 2
    assert len({r.value for r in records}) > CORPUS_SIZE // 3
    rows = [row for rows in by_offset.values() for row in rows]
    reasons = {row["reason"] for row in rows}
    valid = [row for row in rows if row["reason"] is None]
    assert len(valid) > 100, "the corpus must hold valid readings too"
    assert len(reasons - {None}) >= 8, reasons
    assert {row["time_source"] for row in valid} == {"payload", "received"}
    assert len({row["sensor_id"] for row in valid}) > 50


def test_every_record_decodes_as_the_reference_decoder_says(fuzzed: Fuzzed, settings_: Settings) -> None:
    records, by_offset = fuzzed
    found = disagreements(records, by_offset, Rules.from_settings(settings_))
    assert not found, f"{len(found)} of {len(records)} records:\n" + "\n".join(found[:20])


def test_every_record_ends_as_readings_or_rejects_with_a_documented_reason(fuzzed: Fuzzed) -> None:
    records, by_offset = fuzzed
    missing = [(r.value, "no row") for r in records if r.offset not in by_offset]
    assert not missing, failures("left no row at all", missing)
    unknown = [(records[i].value, r["reason"]) for i, rows in by_offset.items() for r in rows]
    unknown = [(v, reason) for v, reason in unknown if reason is not None and reason not in REASONS]
    assert not unknown, failures("were rejected for an undocumented reason", unknown)


def test_valid_readings_meet_the_data_contract(fuzzed: Fuzzed) -> None:
    records, by_offset = fuzzed
    bad = []
    for offset, rows in by_offset.items():
        for row in rows:
            if row["reason"] is not None:
                continue
            present = [(m, row[m.name]) for m in MEASUREMENTS if row[m.name] is not None]
            problems = [
                not row["sensor_id"],
                row["time_us"] is None or not 0 <= row["time_us"] < 253_402_300_800_000_000,
                not present,
                any(not math.isfinite(v) or not m.within(v) for m, v in present),
                parse(row["raw_data"]) is ABSENT or has_nul(parse(row["raw_data"])),  # what jsonb would refuse
            ]
            if any(problems):
                bad.append((records[offset].value, row))
    assert not bad, failures("were accepted against the data contract", bad)


def test_oversized_records_are_rejected_before_parsing(fuzzed: Fuzzed) -> None:
    records, by_offset = fuzzed
    oversized = [r.offset for r in records if len(r.value or b"") > MAX_BYTES]
    assert len(oversized) > 50
    bad = [
        (records[i].value, [(r["reason"], r["encoding"]) for r in by_offset[i]])
        for i in oversized
        if [(r["reason"], r["encoding"]) for r in by_offset[i]] != [("payload_too_large", "unknown")]
    ]
    assert not bad, failures("over the size limit were not rejected as payload_too_large", bad)


def test_the_real_stream_job_stores_and_rejects_the_corpus_as_decode_does(
    fuzzed: Fuzzed, stack_config: Path, empty_db: str, spark: SparkSession
) -> None:
    """The same corpus through Kafka and the stream job (`run_job`, what `sensorpipe stream --available-now`
    runs, here on the process's SparkSession): the readings and rejects it stores are those above."""
    records, by_offset = fuzzed
    tag = uuid.uuid4().hex[:8]
    flags = {
        "kafka.topic": f"fuzz-{tag}",
        "kafka.dlq_topic": f"fuzz-{tag}-dlq",
        "kafka.retention_ms": "-1",  # the records carry old timestamps, long past the default 7 days' retention
        "s3.bucket": f"fuzz-{tag}",
        "stream.checkpoint_base": (Path(tempfile.mkdtemp(prefix="fuzz-checkpoints-"))).as_uri(),
        "postgres.database": empty_db,
        "stream.metrics_port": str(free_port()),
        "stream.max_payload_bytes": str(MAX_BYTES),
        "mqtt.topic": SUBSCRIPTION,
        "readings.default_sensor_id": "default",
    }
    settings = load_settings(parse_assignments([f"{k}={v}" for k, v in flags.items()]), stack_config)
    migrate(settings)
    ensure_bucket(settings.s3)
    create_topics(settings.kafka)
    producer = Producer(client_config(settings.kafka, **{"enable.idempotence": True}))
    for record in records:
        # The same headers and Kafka timestamp as in the decode above: a reading without a time gets one of them.
        timestamp_ms = round(record.timestamp.timestamp() * 1000)
        producer.produce(settings.kafka.topic, record.value, headers=list(record.headers), timestamp=timestamp_ms)
        producer.poll(0)
    assert producer.flush(60) == 0

    run_job(settings, spark, available_now=True)

    rows = [row for rows in by_offset.values() for row in rows]
    expected_keys = {(r["sensor_id"], r["time_us"]) for r in rows if r["reason"] is None}
    expected_rejects = Counter(r["reason"] for r in rows if r["reason"] is not None)
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        stored = conn.execute("select count(*) from sensor_data").fetchone()
        grouped = conn.execute("select reason, count(*) from sensor_rejects group by 1").fetchall()
    rejects: dict[str, int] = {reason: n for reason, n in grouped}
    assert stored == (len(expected_keys),)
    assert Counter(rejects) == expected_rejects
