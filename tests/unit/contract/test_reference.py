"""The reference decoder: every rule of the data contract on one Kafka record, in plain Python."""

from __future__ import annotations

import json

import pytest

from sensorpipe.config import load_settings
from sensorpipe.contract.encodings import ENCODINGS
from sensorpipe.contract.identity import TopicIds
from sensorpipe.contract.reasons import REASONS
from sensorpipe.contract.reference import Decoded, Reading, Record, Reject, Rules, decode
from tests.decode_corpus import (
    CASES,
    EXPECTED_REJECTS,
    KAFKA_TS,
    KAFKA_US,
    READING,
    READING_US,
    RECEIVED_MS,
    RULES,
    SETTINGS,
    record,
)


def decoded(name: str) -> Decoded:
    return decode(record(name), RULES)


def one_reading(name: str) -> Reading:
    found = decoded(name)
    assert not found.rejects and len(found.readings) == 1, found
    return found.readings[0]


def one_reject(name: str) -> Reject:
    found = decoded(name)
    assert not found.readings and len(found.rejects) == 1, found
    return found.rejects[0]


def test_the_rules_come_from_the_settings() -> None:
    rules = Rules.from_settings(load_settings(SETTINGS))
    assert (rules.max_payload_bytes, rules.default_sensor_id) == (RULES.max_payload_bytes, RULES.default_sensor_id)
    assert rules.topic_ids.patterns == RULES.topic_ids.patterns


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
def test_every_encoding_decodes_to_the_same_reading(name: str) -> None:
    assert decoded(name).encoding == ("raw_json" if name == "spaces" else name)
    found = one_reading(name)
    assert (found.sensor_id, found.values) == ("s-1", {"temperature": 21.5, "humidity": 40.25})
    assert (found.time_us, found.time_source, found.element) == (READING_US, "payload", 0)
    assert json.loads(found.raw_data) == READING


def test_a_single_readings_raw_data_is_its_own_text() -> None:
    assert one_reading("raw_json").raw_data == CASES["raw_json"].value.decode()  # type: ignore[union-attr]
    assert one_reading("spaced_numbers").raw_data == '{"temperature": 21.50, "x": 1e400, "y": 1' + "0" * 400 + "}"


def test_a_rendered_readings_raw_data_is_what_spark_writes() -> None:
    huge = "1" + "0" * 400
    assert one_reading("batch_numbers").raw_data == f'{{"temperature":21.50,"x":"Infinity","y":{huge}}}'
    assert one_reading("envelope_numbers").raw_data == '{"temperature":21.50,"x":"Infinity","y":"Infinity"}'
    assert one_reading("envelope_batch_numbers").raw_data == '{"temperature":1,"y":"Infinity"}'


def test_a_gateway_batch_rejects_only_its_bad_element() -> None:
    found = decoded("batch")
    assert [r.element for r in found.readings] == [0, 2]
    good, third = found.readings
    assert (good.sensor_id, good.time_us) == ("s-1", READING_US)
    assert (third.sensor_id, json.loads(third.raw_data)) == ("s-3", {**READING, "sensor_id": "s-3"})
    (bad,) = found.rejects
    assert (bad.element, bad.reason) == (1, "wrong_type")
    assert "temperature is a string" in bad.detail
    assert json.loads(bad.payload) == {"sensor_id": "s-2", "temperature": "hot"}


def test_elements_that_are_no_objects_are_rejected_each() -> None:
    assert [(r.element, r.reason) for r in decoded("batch_of_numbers").rejects] == [
        (0, "not_an_object"),
        (1, "not_an_object"),
    ]
    found = decoded("batch_of_odd_elements")
    assert [(r.element, r.reason, r.payload) for r in found.rejects] == [
        (0, "not_an_object", b"null"),
        (1, "not_an_object", b'"{\\"temperature\\": 1}"'),
        (2, "not_an_object", b'[{"temperature":1}]'),
    ]
    assert [(r.element, r.values["temperature"]) for r in found.readings] == [(3, 2.0)]


@pytest.mark.parametrize(
    ("name", "sensor_id"),
    [
        ("legacy", "default"),
        ("topic_id", "s-17"),
        ("device_id", "42"),
        ("payload_id_first", "s-9"),
        ("empty_id", "s-17"),
        ("null_id", "d-1"),
        ("topic_line_break", "default"),
        ("topic_not_utf8", "default"),
        ("topic_nul", "default"),
        ("topic_other", "default"),
        ("kafka_time", "a"),
    ],
)
def test_sensor_id_follows_the_data_contract(name: str, sensor_id: str) -> None:
    assert one_reading(name).sensor_id == sensor_id


@pytest.mark.parametrize(
    ("name", "time_us", "source"),
    [
        ("legacy", READING_US, "payload"),
        ("ms", READING_US, "payload"),
        ("iso", READING_US, "payload"),
        ("iso_z", READING_US, "payload"),
        ("iso_lower_case", READING_US, "payload"),
        ("iso_minutes", READING_US - 12_123_000, "payload"),
        ("iso_nanos", READING_US + 456, "payload"),
        ("received", RECEIVED_MS * 1000, "received"),
        ("kafka_time", KAFKA_US, "received"),
        ("received_not_digits", KAFKA_US, "received"),
        ("received_negative", KAFKA_US, "received"),
        ("received_beyond_9999", KAFKA_US, "received"),
    ],
)
def test_timestamp_forms_and_receive_time(name: str, time_us: int, source: str) -> None:
    found = one_reading(name)
    assert (found.time_us, found.time_source) == (time_us, source)


def test_an_escaped_backslash_before_u0000_is_no_nul() -> None:
    assert json.loads(one_reading("nul_escaped_backslash").raw_data)["note"] == "a\\u0000b"


@pytest.mark.parametrize("name", sorted(EXPECTED_REJECTS))
def test_every_bad_kind_is_a_reject_with_its_reason(name: str) -> None:
    found = one_reject(name)
    assert (found.reason, found.element) == (EXPECTED_REJECTS[name], 0)
    assert found.detail
    assert found.payload == (CASES[name].value or b"")


def test_every_reason_and_encoding_is_met() -> None:
    found = [decoded(name) for name in CASES]
    assert {r.reason for d in found for r in d.rejects} == set(REASONS)
    assert {d.encoding for d in found} == set(ENCODINGS)


def test_a_record_without_headers_gets_the_default_id_and_its_kafka_time() -> None:
    found = decode(Record(b'{"temperature": 20}', KAFKA_TS), RULES)
    (reading,) = found.readings
    assert (reading.sensor_id, reading.time_us, reading.time_source) == ("default", KAFKA_US, "received")


def test_the_size_limit_and_subscriptions_are_the_rules() -> None:
    rules = Rules(max_payload_bytes=64, default_sensor_id="nobody", topic_ids=TopicIds(("site/+",)))
    value = b'{"temperature": 20}'
    found = decode(Record(value, KAFKA_TS, (("mqtt_topic", b"site/pump-1"),)), rules)
    assert found.readings[0].sensor_id == "pump-1"
    assert decode(Record(value.ljust(65), KAFKA_TS), rules).rejects[0].reason == "payload_too_large"
