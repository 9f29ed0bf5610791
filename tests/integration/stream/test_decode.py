"""Spark's `decode` on a real local SparkSession against the data contract's reference decoder.

Every case of tests/decode_corpus.py is one Kafka record at its own offset, typed like Kafka's source;
all of them are decoded in one DataFrame and collected once, so a poison record that raised would fail
the whole module, as it would the query. Spark must give every record exactly the reference decoder's
outcome: encoding, and per element the reading (sensor, time, measurements, raw_data) or the reject
(reason, payload).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from sensorpipe.config import Settings, load_settings
from sensorpipe.contract.columns import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.contract.encodings import unwrap
from sensorpipe.contract.reasons import REASONS
from sensorpipe.contract.reference import Record, Rules
from sensorpipe.stream.decode import as_writer_columns, decode, valid_readings
from tests import decode_corpus as cases
from tests import encoding_corpus
from tests.decode_support import collect_by_offset, disagreements, kafka_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]

RECORDS = [cases.record(name) for name in cases.CASES]


@pytest.fixture(scope="module")
def settings() -> Settings:
    """Explicit values for everything decoding reads, so the caller's environment does not matter."""
    return load_settings({"spark": {"master": "local[1]", "shuffle_partitions": 1}, **cases.SETTINGS})


@pytest.fixture(scope="module")
def decoded(spark: SparkSession, settings: Settings) -> Iterator[DataFrame]:
    frame = decode(kafka_frame(spark, RECORDS), settings).cache()
    try:
        yield frame
    finally:
        frame.unpersist()


@pytest.fixture(scope="module")
def by_offset(decoded: DataFrame) -> dict[int, list[Row]]:
    return collect_by_offset(decoded)


def test_the_rules_of_the_settings_are_the_corpus_rules(settings: Settings) -> None:
    rules = Rules.from_settings(settings)
    assert (rules.max_payload_bytes, rules.topic_ids.patterns) == (cases.MAX_BYTES, cases.RULES.topic_ids.patterns)


def test_spark_decodes_every_case_as_the_reference_decoder(by_offset: dict[int, list[Row]]) -> None:
    found = disagreements(RECORDS, by_offset, cases.RULES)
    assert not found, f"{len(found)} of {len(RECORDS)} records:\n" + "\n".join(found)


def test_every_reason_is_met(by_offset: dict[int, list[Row]]) -> None:
    reasons = {row["reject_reason"] for rows in by_offset.values() for row in rows} - {None}
    assert reasons == set(REASONS)


def test_rejects_carry_their_kafka_coordinates_and_a_detail(by_offset: dict[int, list[Row]]) -> None:
    for name in cases.EXPECTED_REJECTS:
        (row,) = by_offset[cases.OFFSET[name]]
        assert row["reject_detail"], row
        assert (row["topic"], row["partition"], row["element"]) == ("sensor-data", 2, 0)


def test_valid_readings_and_rejects_have_the_writers_columns(decoded: DataFrame) -> None:
    readings = valid_readings(decoded)
    rejects = as_writer_columns(decoded.where("reject_reason is not null"), REJECT_COLUMNS)
    assert tuple(readings.columns) == READING_COLUMNS
    assert tuple(rejects.columns) == REJECT_COLUMNS
    assert all(row["time"] is not None and row["raw_data"] for row in readings.collect())
    element = next(row for row in rejects.collect() if row["kafka_offset"] == cases.OFFSET["batch"])
    assert (element["reason"], element["element"], element["kafka_topic"]) == ("wrong_type", 1, "sensor-data")


def test_records_read_without_headers_use_the_default_id_and_kafka_time(
    spark: SparkSession, settings: Settings
) -> None:
    from pyspark.sql import functions as F

    frame = kafka_frame(spark, [Record(b'{"temperature": 20.0}', cases.KAFKA_TS, offset=7)]).drop("headers")
    row = decode(frame, settings).select("*", F.unix_micros("time").alias("time_us")).collect()[0]
    assert row["reject_reason"] is None, row
    assert (row["sensor_id"], row["time_us"], row["time_source"]) == ("default", cases.KAFKA_US, "received")


def test_spark_labels_the_encoding_corpus_as_the_contract_does(spark: SparkSession, settings: Settings) -> None:
    """The corpus of tests/unit/contract/test_encodings.py through the real `decode`."""
    stream = settings.stream.model_copy(update={"max_payload_bytes": encoding_corpus.MAX_BYTES})
    names = list(encoding_corpus.CORPUS)
    records = [
        Record(sample.value, cases.KAFKA_TS, offset=offset)
        for offset, sample in enumerate(encoding_corpus.CORPUS.values())
    ]
    frame = decode(kafka_frame(spark, records), settings.model_copy(update={"stream": stream}))
    by_offset = collect_by_offset(frame)
    assert sorted(by_offset) == list(range(len(names)))
    labels: dict[str, Any] = {names[offset]: rows[0]["encoding"] for offset, rows in by_offset.items()}
    assert labels == {name: sample.encoding for name, sample in encoding_corpus.CORPUS.items()}
    assert labels == {
        name: unwrap(sample.value, encoding_corpus.MAX_BYTES).encoding
        for name, sample in encoding_corpus.CORPUS.items()
    }
    found = disagreements(records, by_offset, encoding_corpus.RULES)
    assert not found, f"{len(found)} of {len(records)} records:\n" + "\n".join(found)
