"""Doctor's records check (problem 4) on topics of the tests' own: raw JSON passes, wrapped or foreign records fail."""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from sensorpipe.clients.kafka_client import client_config
from sensorpipe.config import Settings
from tests.doctor_support import METRICS, Doctor, Outcome
from tests.stream_support import produce

pytestmark = pytest.mark.integration


def readings(count: int) -> list[bytes]:
    return [
        json.dumps({"sensor_id": f"s-{i % 4}", "temperature": 20 + i % 7, "humidity": 50.0}).encode()
        for i in range(count)
    ]


def connect_envelope(payload: bytes) -> bytes:
    """What Kafka Connect's JsonConverter (schemas on) writes for a bytes value: base64 in an envelope."""
    body = {"schema": {"type": "bytes", "optional": False}, "payload": base64.b64encode(payload).decode()}
    return json.dumps(body).encode()


def on_fresh_topic(doctor: Doctor, settings: Settings, values: list[bytes]) -> Outcome:
    """Doctor with kafka.topic set to a new topic (and its DLQ) holding `values`."""
    topic = f"records-{uuid.uuid4().hex[:8]}"
    produce(settings, topic, values)
    return doctor(f"kafka.topic={topic}", f"kafka.dlq_topic={topic}-dlq")


def only_records_check(outcome: Outcome) -> tuple[str, dict[str, str]]:
    names = [name for name in outcome.checks if name.startswith("records ")]
    assert len(names) == 1, outcome.checks
    check = outcome.checks[names[0]]
    assert check["problem"] == 4
    return names[0].removeprefix("records "), check


def test_raw_json_passes_and_a_few_bad_records_are_counted_not_failed(doctor: Doctor, stack_settings: Settings) -> None:
    values = [*readings(40), b'{"temperature": 21.5', b"\xff\xfe"]
    outcome = on_fresh_topic(doctor, stack_settings, values)
    assert outcome.failed == METRICS, outcome.checks
    _topic, check = only_records_check(outcome)
    assert check["ok"]
    assert check["detail"] == "42 recent record(s): 40 raw JSON, 2 not JSON (dead-lettered by the stream job)"


def test_only_the_latest_records_are_read(doctor: Doctor, stack_settings: Settings) -> None:
    outcome = on_fresh_topic(doctor, stack_settings, readings(260))
    _topic, check = only_records_check(outcome)
    assert check["ok"]
    assert check["detail"] == "200 recent record(s): 200 raw JSON"


def test_an_empty_topic_passes(doctor: Doctor, stack_settings: Settings) -> None:
    outcome = on_fresh_topic(doctor, stack_settings, [])
    topic, check = only_records_check(outcome)
    assert outcome.failed == METRICS
    assert check["detail"] == f"no records yet on {topic}"


def test_base64_wrapped_records_fail_with_the_converter_to_use(doctor: Doctor, stack_settings: Settings) -> None:
    raw = readings(15)
    values = [*raw[:2], *(base64.b64encode(value) for value in raw[2:14]), connect_envelope(raw[14])]
    outcome = on_fresh_topic(doctor, stack_settings, values)
    topic, check = only_records_check(outcome)
    assert outcome.failed == {f"records {topic}", *METRICS}
    detail = check["detail"]
    assert detail.startswith("15 recent record(s): 13 wrapped (12 base64_json, 1 envelope_base64_json; e.g. ")
    assert re.search(rf"e\.g\. {re.escape(topic)}\[\d+\]@\d+\), 2 raw JSON: ", detail), detail
    assert "something other than `sensorpipe bridge` writes wrapped payloads" in detail
    assert "value.converter=org.apache.kafka.connect.converters.ByteArrayConverter" in check["fix"]
    assert "`sensorpipe bridge`" in check["fix"]


def test_records_that_are_mostly_not_json_fail(doctor: Doctor, stack_settings: Settings) -> None:
    values = [*readings(3), *(f"temperature={20 + i};humidity=50".encode() for i in range(5)), b"\x00\x01\x02"]
    outcome = on_fresh_topic(doctor, stack_settings, values)
    topic, check = only_records_check(outcome)
    assert outcome.failed == {f"records {topic}", *METRICS}
    assert check["detail"].startswith(
        f"9 recent record(s): 3 raw JSON, 6 not JSON: another producer writes records that are not JSON to {topic}"
    )
    assert "`sensorpipe tail kafka`" in check["fix"]
    assert "ByteArrayConverter" not in check["fix"]


def test_a_missing_topic_is_reported_once_by_the_topic_check(doctor: Doctor) -> None:
    topic = f"missing-{uuid.uuid4().hex[:8]}"
    outcome = doctor(f"kafka.topic={topic}")
    assert f"topic {topic}" in outcome.failed
    assert f"records {topic}" in outcome.skipped
    assert outcome.checks[f"records {topic}"]["detail"] == f"not checked: topic {topic} failed"


def test_reading_the_sample_joins_no_consumer_group(doctor: Doctor, stack_settings: Settings) -> None:
    admin = AdminClient(client_config(stack_settings.kafka))

    def groups() -> set[str]:
        listed = admin.list_consumer_groups(request_timeout=10).result()
        return {group.group_id for group in listed.valid}

    before = groups()
    outcome = on_fresh_topic(doctor, stack_settings, readings(5))
    assert only_records_check(outcome)[1]["detail"] == "5 recent record(s): 5 raw JSON"
    assert not {group for group in groups() - before if group.startswith("sensorpipe-doctor")}
