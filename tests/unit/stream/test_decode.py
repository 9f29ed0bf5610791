"""The stream job's decode (Kafka rows as Arrow in, readings and rejects as Arrow out) on every case of
tests/decode_corpus.py, each one Kafka record at its own offset, typed as Spark hands the Kafka source's
rows to `mapInArrow`. All of them are decoded in one batch, so a poison record that raised would fail
the whole module, as it would the query. Every record must come out as the data contract's reference
decoder says: encoding, and per element the reading (sensor, time, measurements, raw_data) or the reject
(reason, payload), with its Kafka coordinates and the writer's columns.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from sensorpipe.config import load_settings
from sensorpipe.contract.columns import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.contract.encodings import unwrap
from sensorpipe.contract.reasons import REASONS
from sensorpipe.contract.reference import Record, Rules
from sensorpipe.stream.decode import DECODED_SCHEMA, decode_batch
from tests import decode_corpus as cases
from tests import encoding_corpus
from tests.decode_support import Row, disagreements, kafka_batch, rows_by_offset

RECORDS = [cases.record(name) for name in cases.CASES]


@pytest.fixture(scope="module")
def decoded() -> pa.Table:
    return decode_batch(kafka_batch(RECORDS), cases.RULES)


@pytest.fixture(scope="module")
def by_offset(decoded: pa.Table) -> dict[int, list[Row]]:
    return rows_by_offset(decoded)


def test_the_rules_of_the_settings_are_the_corpus_rules() -> None:
    rules = Rules.from_settings(load_settings(cases.SETTINGS))
    assert (rules.max_payload_bytes, rules.topic_ids.patterns) == (cases.MAX_BYTES, cases.RULES.topic_ids.patterns)


def test_every_case_decodes_as_the_reference_decoder_says(by_offset: dict[int, list[Row]]) -> None:
    assert sorted(by_offset) == [record.offset for record in RECORDS]
    found = disagreements(RECORDS, by_offset, cases.RULES)
    assert not found, f"{len(found)} of {len(RECORDS)} records:\n" + "\n".join(found)


def test_every_reason_is_met(by_offset: dict[int, list[Row]]) -> None:
    reasons = {row["reason"] for rows in by_offset.values() for row in rows} - {None}
    assert reasons == set(REASONS)


def test_rejects_carry_their_kafka_coordinates_and_a_detail(by_offset: dict[int, list[Row]]) -> None:
    for name in cases.EXPECTED_REJECTS:
        (row,) = by_offset[cases.OFFSET[name]]
        assert row["detail"], row
        assert (row["kafka_topic"], row["kafka_partition"], row["element"]) == ("sensor-data", 2, 0)


def test_valid_readings_and_rejects_have_the_writers_columns(decoded: pa.Table) -> None:
    assert decoded.schema == DECODED_SCHEMA
    assert {*READING_COLUMNS, *REJECT_COLUMNS} <= set(decoded.column_names)
    rows = decoded.to_pylist()
    readings = [row for row in rows if row["reason"] is None]
    assert readings and all(row["time"] is not None and row["raw_data"] for row in readings)
    element = next(row for row in rows if row["kafka_offset"] == cases.OFFSET["batch"] and row["reason"])
    assert (element["reason"], element["element"], element["kafka_topic"]) == ("wrong_type", 1, "sensor-data")


def test_records_read_without_headers_use_the_default_id_and_kafka_time() -> None:
    batch = kafka_batch([Record(b'{"temperature": 20.0}', cases.KAFKA_TS, offset=7)])
    (row,) = rows_by_offset(decode_batch(batch.drop_columns(["headers"]), cases.RULES))[7]
    assert row["reason"] is None, row
    assert (row["sensor_id"], row["time_us"], row["time_source"]) == ("default", cases.KAFKA_US, "received")


def test_a_kafka_time_without_a_zone_is_utc() -> None:
    batch = kafka_batch([Record(b'{"temperature": 20.0}', cases.KAFKA_TS, offset=7)])
    naive = batch.set_column(5, "timestamp", batch.column("timestamp").cast(pa.timestamp("us")))
    (row,) = rows_by_offset(decode_batch(naive.drop_columns(["headers"]), cases.RULES))[7]
    assert row["time_us"] == cases.KAFKA_US


def test_the_encoding_corpus_is_labelled_as_the_contract_does() -> None:
    """The corpus of tests/unit/contract/test_encodings.py through the job's decode."""
    names = list(encoding_corpus.CORPUS)
    records = [
        Record(sample.value, cases.KAFKA_TS, offset=offset)
        for offset, sample in enumerate(encoding_corpus.CORPUS.values())
    ]
    by_offset = rows_by_offset(decode_batch(kafka_batch(records), encoding_corpus.RULES))
    assert sorted(by_offset) == list(range(len(names)))
    labels: dict[str, Any] = {names[offset]: rows[0]["encoding"] for offset, rows in by_offset.items()}
    assert labels == {name: sample.encoding for name, sample in encoding_corpus.CORPUS.items()}
    assert labels == {
        name: unwrap(sample.value, encoding_corpus.MAX_BYTES).encoding
        for name, sample in encoding_corpus.CORPUS.items()
    }
    found = disagreements(records, by_offset, encoding_corpus.RULES)
    assert not found, f"{len(found)} of {len(records)} records:\n" + "\n".join(found)


def test_a_batch_of_rejects_only_and_rows_with_null_headers_keep_the_schema() -> None:
    batch = kafka_batch([Record(b"nope", cases.KAFKA_TS, offset=1), Record(b"", cases.KAFKA_TS, offset=2)])
    no_headers = pa.array([None, None], batch.schema.field("headers").type)
    decoded = decode_batch(batch.set_column(7, "headers", no_headers), cases.RULES)
    assert decoded.schema == DECODED_SCHEMA
    assert [(row["kafka_offset"], row["reason"]) for row in decoded.to_pylist()] == [(1, "undecodable"), (2, "empty")]
