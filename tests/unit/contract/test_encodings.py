"""Unwrapping a record's value in plain Python, over the corpus of labelled values (tests/encoding_corpus.py)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from sensorpipe.contract.encodings import ENCODINGS, WRAPPED, unwrap
from sensorpipe.contract.reasons import Reason
from tests.encoding_corpus import CORPUS, MAX_BYTES, RAW, READING, b64, envelope


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_sample_gets_the_label_of_the_stream_job(name: str) -> None:
    sample = CORPUS[name]
    found = unwrap(sample.value, MAX_BYTES)
    assert (found.encoding, found.unwrapped) == (sample.encoding, sample.decodes)


def test_the_corpus_has_every_encoding_decoding_and_not() -> None:
    seen = {(sample.encoding, sample.decodes) for sample in CORPUS.values()}
    assert {encoding for encoding, _ in seen} == set(ENCODINGS)
    assert {encoding for encoding, decodes in seen if decodes} == set(ENCODINGS) - {"unknown"}
    assert {encoding for encoding, decodes in seen if not decodes} == set(ENCODINGS)


def test_wrapped_encodings_are_all_but_raw_json_and_unknown() -> None:
    assert sorted(WRAPPED) == [
        "base64_json",
        "envelope_base64_json",
        "envelope_quoted_base64",
        "envelope_raw_json",
        "quoted_base64",
    ]


def test_the_size_limit_is_the_one_given() -> None:
    assert unwrap(RAW, len(RAW)).encoding == "raw_json"
    too_large = unwrap(RAW, len(RAW) - 1)
    assert (too_large.encoding, too_large.reject) == (
        "unknown",
        (Reason.PAYLOAD_TOO_LARGE, f"{len(RAW)} bytes, more than {len(RAW) - 1}"),
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", Reason.EMPTY),
        (b" \r\n", Reason.EMPTY),
        (b"\xff{}", Reason.UNDECODABLE),
        (b"hello!", Reason.UNDECODABLE),
        (b64(b"\xff\xfe").encode(), Reason.UNDECODABLE),
        (RAW[:-1], Reason.NOT_JSON),
        (RAW + b" " + RAW, Reason.NOT_JSON),
        (b"42", Reason.NOT_AN_OBJECT),
        (envelope(7), Reason.NOT_AN_OBJECT),
        (envelope(envelope(READING).decode()), Reason.NESTED_ENVELOPE),
        (b64(envelope(READING)).encode(), Reason.NESTED_ENVELOPE),
        (RAW, None),
        (b"[]", None),
    ],
)
def test_a_record_that_is_no_reading_or_batch_gets_its_reason(value: bytes, reason: Reason | None) -> None:
    found = unwrap(value, MAX_BYTES)
    assert (found.reject[0] if found.reject else None) == reason


def test_the_json_inside_is_the_payloads_own_text_unless_spark_renders_it() -> None:
    assert unwrap(b64(RAW).encode(), MAX_BYTES).text == RAW.decode()
    value = b'{"schema": {}, "payload": {"temperature": 1e400, "big": 1' + b"0" * 400 + b"}}"
    inside = unwrap(value, MAX_BYTES)
    assert (inside.text, inside.rendered) == ('{"temperature":"Infinity","big":"Infinity"}', True)


def test_any_bytes_get_a_label_and_never_raise() -> None:
    chance = random.Random(4)
    alphabet = b'{}[]":, \n\\u0d8=AZaz09+/-_\xff\xc3\xa9'
    values = [bytes(chance.choice(alphabet) for _ in range(chance.randrange(40))) for _ in range(3000)]
    for sample in CORPUS.values():
        if sample.value:
            cut = chance.randrange(len(sample.value))
            values += [sample.value[:cut], sample.value[cut:], sample.value[:cut] + b"\x00" + sample.value[cut:]]
    for value in values:
        assert unwrap(value, MAX_BYTES).encoding in ENCODINGS, value


def test_the_contract_imports_nothing_but_the_standard_library_and_the_settings() -> None:
    """doctor must answer quickly, the bridge must not pull Spark in: the contract imports no client."""
    code = (
        "import sys, sensorpipe.contract.reference, sensorpipe.contract.columns;"
        " print(sorted(m for m in ('pyspark', 'paho', 'confluent_kafka', 'psycopg', 'pyarrow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_doctors_record_check_imports_no_pyspark() -> None:
    """Doctor samples the topic with the contract's decoder, so it never needs a JVM."""
    code = "import sys, sensorpipe.doctor.records; print('pyspark' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
