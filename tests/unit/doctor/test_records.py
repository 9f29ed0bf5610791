"""The records check's verdict and its sample's spread over partitions, without Kafka."""

from __future__ import annotations

import pytest

from sensorpipe.doctor.records import judge, spread
from sensorpipe.monitoring.tail import KafkaRecord
from tests.encoding_corpus import CORPUS, RULES


def record(sample: str, offset: int, partition: int = 0) -> KafkaRecord:
    return KafkaRecord("t", partition, offset, None, None, (), CORPUS[sample].value)


def verdict(*samples: str) -> tuple[bool, str, str | None]:
    check = judge("records t", "t", [record(name, i) for i, name in enumerate(samples)], RULES)
    return check.ok, check.detail, check.fix


@pytest.mark.parametrize(
    ("budget", "available", "taken"),
    [
        (200, [1000, 1000, 1000], [67, 67, 66]),
        (200, [0, 5, 1000], [0, 5, 195]),
        (200, [10, 20], [10, 20]),
        (3, [100, 100, 100, 100], [1, 1, 1, 0]),
        (200, [], []),
    ],
)
def test_the_sample_is_spread_evenly_over_partitions_that_have_records(
    budget: int, available: list[int], taken: list[int]
) -> None:
    assert spread(budget, available) == taken


def test_raw_json_passes_and_counts_what_is_not_json() -> None:
    assert verdict("raw_json", "raw_batch") == (True, "2 recent record(s): 2 raw JSON", None)
    ok, detail, _ = verdict("raw_json", "raw_json", "truncated")
    assert (ok, detail) == (True, "3 recent record(s): 2 raw JSON, 1 not JSON (dead-lettered by the stream job)")


def test_wrapped_records_fail_whatever_their_share() -> None:
    ok, detail, fix = verdict("raw_json", "raw_json", "base64_json", "envelope_quoted_base64", "base64_json", "text")
    assert not ok
    assert detail == (
        "6 recent record(s): 3 wrapped (2 base64_json, 1 envelope_quoted_base64; e.g. t[0]@2), 2 raw JSON,"
        " 1 not JSON: something other than `sensorpipe bridge` writes wrapped payloads (the stream job decodes them)"
    )
    assert fix is not None and "value.converter=org.apache.kafka.connect.converters.ByteArrayConverter" in fix


def test_wrapped_base64_that_does_not_decode_is_not_json_not_wrapped() -> None:
    ok, detail, _ = verdict("raw_json", "raw_json", "bad_padding")
    assert (ok, detail) == (True, "3 recent record(s): 2 raw JSON, 1 not JSON (dead-lettered by the stream job)")


def test_mostly_not_json_fails_half_does_not() -> None:
    assert verdict("raw_json", "text")[0]
    ok, detail, fix = verdict("raw_json", "text", "empty")
    assert not ok
    assert detail == (
        "3 recent record(s): 1 raw JSON, 2 not JSON: another producer writes records that are not JSON to t"
        " (e.g. t[0]@1)"
    )
    assert fix is not None and "`sensorpipe tail kafka`" in fix


def test_both_causes_give_both_fixes() -> None:
    ok, detail, fix = verdict("base64_json", "text", "none")
    assert not ok
    assert "writes wrapped payloads" in detail and "not JSON to t" in detail
    assert fix is not None and "ByteArrayConverter" in fix and "`sensorpipe tail kafka`" in fix
