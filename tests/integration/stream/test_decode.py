"""Decoding and validation on a real local SparkSession, from in-memory rows typed like Kafka's source.

Every case is one Kafka record at its own offset; all of them are decoded in one DataFrame and
collected once, so a poison record that raised would fail the whole module, as it would the query.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from sensorpipe.config import Settings, load_settings
from sensorpipe.storage.writer import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.stream.decode import ENCODINGS, REASONS, as_writer_columns, decode, valid_readings
from sensorpipe.stream.encodings import Detected, detect
from tests import encoding_corpus as corpus

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]

MAX_BYTES = 16_384
KAFKA_TS = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KAFKA_US = 1_767_323_045_000_000
RECEIVED_MS = 1_712_921_700_000
READING = {"sensor_id": "s-1", "timestamp": 1712921712.123, "temperature": 21.5, "humidity": 40.25}
READING_US = 1_712_921_712_123_000
KAFKA_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp,"
    " timestampType int, headers array<struct<key:string,value:binary>>"
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def envelope(payload: Any, schema: Any = None) -> bytes:
    return json.dumps({"schema": schema or {"type": "bytes", "optional": False}, "payload": payload}).encode()


def reading(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def with_padding_two() -> str:
    """Base64 of the reading that ends in `==`, so dropping one `=` makes the padding wrong."""
    text = json.dumps(READING)
    while len(text.encode()) % 3 != 1:
        text += " "
    encoded = b64(text.encode())
    assert encoded.endswith("==")
    return encoded[:-1]


RAW = json.dumps(READING).encode()
NO_TS = {"temperature": 20.0, "humidity": 50.0}

# offset: (value, mqtt topic header or None, received-at header or None)
CASES: dict[str, tuple[bytes | None, str | None, int | None]] = {
    # the same reading in every encoding
    "raw_json": (RAW, "sensors/s-1/data", RECEIVED_MS),
    "base64_json": (b64(RAW).encode(), None, None),
    "quoted_base64": (json.dumps(b64(RAW)).encode(), None, None),
    "envelope_raw_json": (envelope(READING, {"type": "struct", "fields": []}), None, None),
    "envelope_base64_json": (envelope(b64(RAW)), None, None),
    "envelope_quoted_base64": (envelope(json.dumps(b64(RAW))), None, None),
    "spaces": (b"  \n" + RAW + b"\n ", None, None),
    # gateway batch: element 1 is bad
    "batch": (
        json.dumps([READING, {"sensor_id": "s-2", "temperature": "hot"}, {**READING, "sensor_id": "s-3"}]).encode(),
        "sensors/gw-01/data",
        RECEIVED_MS,
    ),
    "batch_of_numbers": (b"[1, 2]", None, None),
    # sensor id and time
    "legacy": (reading(temperature=25.3, humidity=65.4, timestamp=1712921712.123), "sensors/data", RECEIVED_MS),
    "topic_id": (reading(temperature=25.3, timestamp=1712921712.123), "sensors/s-17/data", RECEIVED_MS),
    "device_id": (reading(device_id=42, humidity=10, timestamp=1712921712.123), "sensors/s-17/data", None),
    "empty_id": (reading(sensor_id="", humidity=10, timestamp=1712921712.123), "sensors/s-17/data", None),
    "ms": (reading(sensor_id="a", temperature=1, timestamp=1712921712123), None, None),
    "iso": (reading(sensor_id="a", temperature=1, timestamp="2024-04-12T13:35:12.123+02:00"), None, None),
    "iso_z": (reading(sensor_id="a", temperature=1, timestamp="2024-04-12T11:35:12.123Z"), None, None),
    "received": (reading(sensor_id="a", **NO_TS), "sensors/a/data", RECEIVED_MS),
    "kafka_time": (reading(sensor_id="a", **NO_TS, timestamp=None), None, None),
    # rejects
    "empty": (b"", None, None),
    "null_value": (None, None, None),
    "blank": (b"  \n", None, None),
    "too_large": (json.dumps({**READING, "pad": "x" * MAX_BYTES}).encode(), None, None),
    "not_utf8": (b'\xff\xfe{"temperature": 1}', None, None),
    "base64_not_utf8": (b64(b"\xff\xfe\xfd").encode(), None, None),
    "bad_padding": (with_padding_two().encode(), None, None),
    "not_base64": (b"hello!", None, None),
    "base64_not_json": (b64(b"temperature=21").encode(), None, None),
    "truncated": (RAW[: len(RAW) // 2], None, None),
    "trailing": (RAW + b"}", None, None),
    "two_values": (RAW + b" " + RAW, None, None),
    "nan": (b'{"temperature": NaN}', None, None),
    "infinity": (b'{"temperature": -Infinity, "humidity": 3}', None, None),
    "nan_string": (reading(temperature="NaN"), None, None),
    "huge": (b'{"temperature": 1e400}', None, None),
    "huge_humidity": (b'{"temperature": 20, "humidity": -1e400}', None, None),
    "long_number": (b'{"temperature": ' + b"1" * 1200 + b"}", None, None),
    "deep": (b'{"temperature": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", None, None),
    "nul": (b'{"temperature": 1, "note": "a\\u0000b"}', None, None),
    "hot": (reading(sensor_id="a", temperature="hot"), None, None),
    "numeric_string": (reading(sensor_id="a", temperature="21.5"), None, None),
    "bool_value": (reading(humidity=True), None, None),
    "bool_id": (reading(sensor_id=True, humidity=1), None, None),
    "missing": (reading(sensor_id="a"), None, None),
    "only_nulls": (reading(temperature=None, humidity=None), None, None),
    "too_hot": (reading(temperature=999.0), None, None),
    "too_dry": (reading(humidity=-0.5), None, None),
    "bad_ts": (reading(temperature=1, timestamp="yesterday"), None, None),
    "naive_iso": (reading(temperature=1, timestamp="2024-04-12T11:35:12"), None, None),
    "bool_ts": (reading(temperature=1, timestamp=True), None, None),
    "far_ts": (reading(temperature=1, timestamp=1e30), None, None),
    "negative_ts": (reading(temperature=1, timestamp=-5), None, None),
    "number": (b"42", None, None),
    "string": (b'"just text"', None, None),
    "empty_batch": (b"[]", None, None),
    "nested_envelope": (envelope(json.loads(envelope(READING))), None, None),
    "base64_envelope": (b64(envelope(READING)).encode(), None, None),
    "envelope_number": (envelope(7), None, None),
    "envelope_null": (b'{"schema": null, "payload": null}', None, None),
}
OFFSET = {name: offset for offset, name in enumerate(CASES)}

EXPECTED_REJECTS = {
    "empty": "empty",
    "null_value": "empty",
    "blank": "empty",
    "too_large": "payload_too_large",
    "not_utf8": "undecodable",
    "base64_not_utf8": "undecodable",
    "bad_padding": "undecodable",
    "not_base64": "undecodable",
    "base64_not_json": "not_json",
    "truncated": "not_json",
    "trailing": "not_json",
    "two_values": "not_json",
    "nan": "not_json",
    "infinity": "not_json",
    "nan_string": "wrong_type",
    "huge": "not_finite",
    "huge_humidity": "not_finite",
    "long_number": "not_json",
    "deep": "not_json",
    "nul": "not_json",
    "hot": "wrong_type",
    "numeric_string": "wrong_type",
    "bool_value": "wrong_type",
    "bool_id": "wrong_type",
    "missing": "missing_values",
    "only_nulls": "missing_values",
    "too_hot": "out_of_range",
    "too_dry": "out_of_range",
    "bad_ts": "bad_timestamp",
    "naive_iso": "bad_timestamp",
    "bool_ts": "bad_timestamp",
    "far_ts": "bad_timestamp",
    "negative_ts": "bad_timestamp",
    "number": "not_an_object",
    "string": "undecodable",
    "empty_batch": "empty",
    "nested_envelope": "nested_envelope",
    "base64_envelope": "nested_envelope",
    "envelope_number": "not_an_object",
    "envelope_null": "not_an_object",
}


@pytest.fixture(scope="module")
def settings() -> Settings:
    """Explicit values for everything decoding reads, so the caller's environment does not matter."""
    return load_settings(
        {
            "spark": {"master": "local[1]", "shuffle_partitions": 1},
            "mqtt": {"topic": "sensors/+/data"},
            "readings": {"default_sensor_id": "default"},
            "stream": {"max_payload_bytes": MAX_BYTES},
        }
    )


@pytest.fixture(scope="module")
def decoded(spark: SparkSession, settings: Settings) -> Iterator[DataFrame]:
    rows = []
    for offset, (value, topic, received_ms) in enumerate(CASES.values()):
        headers = []
        if topic is not None:
            headers.append(("mqtt_topic", bytearray(topic.encode())))
        if received_ms is not None:
            headers.append(("mqtt_received_at_ms", bytearray(str(received_ms).encode())))
        payload = None if value is None else bytearray(value)
        rows.append((bytearray(b"k"), payload, "sensor-data", 2, offset, KAFKA_TS, 0, headers))
    frame = decode(spark.createDataFrame(rows, KAFKA_SCHEMA), settings).cache()
    try:
        yield frame
    finally:
        frame.unpersist()


@pytest.fixture(scope="module")
def by_case(decoded: DataFrame) -> dict[str, list[Row]]:
    from pyspark.sql import functions as F

    rows = decoded.select("*", F.unix_micros("time").alias("time_us")).collect()
    found: dict[str, list[Row]] = {name: [] for name in CASES}
    for row in rows:
        found[list(CASES)[row["offset"]]].append(row)
    return {name: sorted(found[name], key=lambda row: row["element"]) for name in CASES}


def one(by_case: dict[str, list[Row]], name: str) -> Row:
    rows = by_case[name]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize(
    "name",
    [
        "raw_json",
        "base64_json",
        "quoted_base64",
        "envelope_raw_json",
        "envelope_base64_json",
        "envelope_quoted_base64",
        "spaces",
    ],
)
def test_every_encoding_decodes_to_the_same_reading(by_case: dict[str, list[Row]], name: str) -> None:
    row = one(by_case, name)
    assert row["reject_reason"] is None, row
    assert row["encoding"] == ("raw_json" if name == "spaces" else name)
    assert (row["sensor_id"], row["temperature"], row["humidity"]) == ("s-1", 21.5, 40.25)
    assert (row["time_us"], row["time_source"], row["element"]) == (READING_US, "payload", 0)
    assert json.loads(row["raw_data"]) == READING
    assert (row["topic"], row["partition"], row["offset"]) == ("sensor-data", 2, OFFSET[name])


def test_encoding_labels_are_the_documented_ones(by_case: dict[str, list[Row]]) -> None:
    labels = {row["encoding"] for rows in by_case.values() for row in rows}
    assert labels <= set(ENCODINGS)
    assert one(by_case, "empty")["encoding"] == "unknown"
    assert one(by_case, "not_utf8")["encoding"] == "unknown"
    assert one(by_case, "bad_padding")["encoding"] == "base64_json"


def test_a_gateway_batch_rejects_only_its_bad_element(by_case: dict[str, list[Row]]) -> None:
    rows = by_case["batch"]
    assert [row["element"] for row in rows] == [0, 1, 2]
    good, bad, third = rows
    assert (good["reject_reason"], good["sensor_id"], good["time_us"]) == (None, "s-1", READING_US)
    assert (third["reject_reason"], third["sensor_id"]) == (None, "s-3")
    assert json.loads(third["raw_data"]) == {**READING, "sensor_id": "s-3"}
    assert bad["reject_reason"] == "wrong_type"
    assert "temperature is STRING" in bad["reject_detail"]
    assert json.loads(bad["payload"]) == {"sensor_id": "s-2", "temperature": "hot"}
    assert {row["encoding"] for row in rows} == {"raw_json"}
    numbers = by_case["batch_of_numbers"]
    assert [(row["element"], row["reject_reason"]) for row in numbers] == [(0, "not_an_object"), (1, "not_an_object")]


@pytest.mark.parametrize(
    ("name", "sensor_id"),
    [("legacy", "default"), ("topic_id", "s-17"), ("device_id", "42"), ("empty_id", "s-17"), ("kafka_time", "a")],
)
def test_sensor_id_follows_the_data_contract(by_case: dict[str, list[Row]], name: str, sensor_id: str) -> None:
    row = one(by_case, name)
    assert row["reject_reason"] is None, row
    assert row["sensor_id"] == sensor_id


@pytest.mark.parametrize(
    ("name", "time_us", "source"),
    [
        ("legacy", READING_US, "payload"),
        ("ms", READING_US, "payload"),
        ("iso", READING_US, "payload"),
        ("iso_z", READING_US, "payload"),
        ("received", RECEIVED_MS * 1000, "received"),
        ("kafka_time", KAFKA_US, "received"),
    ],
)
def test_timestamp_forms_and_receive_time(by_case: dict[str, list[Row]], name: str, time_us: int, source: str) -> None:
    row = one(by_case, name)
    assert row["reject_reason"] is None, row
    assert (row["time_us"], row["time_source"]) == (time_us, source)


@pytest.mark.parametrize("name", sorted(EXPECTED_REJECTS))
def test_every_bad_kind_is_a_reject_with_its_reason(by_case: dict[str, list[Row]], name: str) -> None:
    row = one(by_case, name)
    assert row["reject_reason"] == EXPECTED_REJECTS[name], row
    assert row["reject_detail"]
    assert (row["topic"], row["partition"], row["offset"], row["element"]) == ("sensor-data", 2, OFFSET[name], 0)
    value = CASES[name][0]
    assert bytes(row["payload"]) == (value or b"")


def test_reasons_are_the_documented_ones(by_case: dict[str, list[Row]]) -> None:
    reasons = {row["reject_reason"] for rows in by_case.values() for row in rows} - {None}
    assert reasons == set(REASONS)


def test_valid_readings_and_rejects_have_the_writers_columns(decoded: DataFrame) -> None:
    readings = valid_readings(decoded)
    rejects = as_writer_columns(decoded.where("reject_reason is not null"), REJECT_COLUMNS)
    assert tuple(readings.columns) == READING_COLUMNS
    assert tuple(rejects.columns) == REJECT_COLUMNS
    valid = readings.collect()
    bad = rejects.collect()
    singles = set(CASES) - set(EXPECTED_REJECTS) - {"batch", "batch_of_numbers"}
    assert len(valid) == len(singles) + 2  # the batch's two good elements
    assert all(row["time"] is not None and row["raw_data"] for row in valid)
    assert {row["time_source"] for row in valid} == {"payload", "received"}
    assert len(bad) == len(EXPECTED_REJECTS) + 1 + 2  # the batch's bad element, two non-object elements
    element = next(row for row in bad if row["kafka_offset"] == OFFSET["batch"])
    assert (element["reason"], element["element"], element["kafka_topic"]) == ("wrong_type", 1, "sensor-data")


def test_records_read_without_headers_use_the_default_id_and_kafka_time(
    spark: SparkSession, settings: Settings
) -> None:
    from pyspark.sql import functions as F

    frame = spark.createDataFrame(
        [(None, bytearray(reading(temperature=20.0)), "sensor-data", 0, 7, KAFKA_TS, 0, [])], KAFKA_SCHEMA
    ).drop("headers")
    row = decode(frame, settings).select("*", F.unix_micros("time").alias("time_us")).collect()[0]
    assert row["reject_reason"] is None, row
    assert (row["sensor_id"], row["time_us"], row["time_source"]) == ("default", KAFKA_US, "received")


def _unwrapped_by_spark(row: Row) -> bool:
    """Whether Spark got a JSON object or array out of the record: no record-level reject says otherwise."""
    reason, detail = row["reject_reason"], row["reject_detail"] or ""
    return not (
        reason in ("payload_too_large", "undecodable")
        or (reason == "empty" and detail == "no payload")
        or (reason == "not_json" and detail.startswith("the decoded payload"))
        or (reason == "not_an_object" and not detail.startswith("element "))
    )


def _disagreements(rows: list[Row], values: dict[int, bytes | None], max_bytes: int) -> list[str]:
    """Records (element 0 rows) whose Python detection differs from Spark's labels."""
    found = []
    for row in rows:
        python = detect(values[row["offset"]], max_bytes)
        spark = Detected(row["encoding"], _unwrapped_by_spark(row))
        if python != spark:
            found.append(f"offset {row['offset']}: python {python}, spark {spark} ({row['reject_reason']})")
    return found


def test_the_python_detector_labels_every_case_as_spark_does(by_case: dict[str, list[Row]]) -> None:
    rows = [by_case[name][0] for name in CASES]
    values = {OFFSET[name]: value for name, (value, _topic, _received) in CASES.items()}
    assert _disagreements(rows, values, MAX_BYTES) == []


def test_the_python_detector_labels_the_encoding_corpus_as_spark_does(spark: SparkSession, settings: Settings) -> None:
    """The corpus of tests/unit/stream/test_encodings.py through the real `decode`: Spark is the reference."""
    stream = settings.stream.model_copy(update={"max_payload_bytes": corpus.MAX_BYTES})
    names = list(corpus.CORPUS)
    rows: list[tuple[Any, ...]] = [
        (bytearray(b"k"), None if sample.value is None else bytearray(sample.value), "t", 0, offset, KAFKA_TS, 0, [])
        for offset, sample in enumerate(corpus.CORPUS.values())
    ]
    frame = decode(spark.createDataFrame(rows, KAFKA_SCHEMA), settings.model_copy(update={"stream": stream}))
    firsts = frame.where("element = 0").collect()
    assert sorted(row["offset"] for row in firsts) == list(range(len(names)))
    values = {offset: sample.value for offset, sample in enumerate(corpus.CORPUS.values())}
    assert _disagreements(firsts, values, corpus.MAX_BYTES) == []
    labels = {names[row["offset"]]: row["encoding"] for row in firsts}
    assert labels == {name: sample.encoding for name, sample in corpus.CORPUS.items()}
