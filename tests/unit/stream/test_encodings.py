"""The pure-Python encoding detector `sensorpipe doctor` uses, over the corpus Spark's `decode` labels the same way."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from sensorpipe.stream.encodings import ENCODINGS, WRAPPED, Detected, detect
from tests.encoding_corpus import CORPUS, MAX_BYTES, RAW


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_sample_gets_the_label_of_the_stream_job(name: str) -> None:
    sample = CORPUS[name]
    assert detect(sample.value, MAX_BYTES) == Detected(sample.encoding, sample.decodes)


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
    assert detect(RAW, len(RAW)).encoding == "raw_json"
    assert detect(RAW, len(RAW) - 1) == Detected("unknown", False)


def test_any_bytes_get_a_label_and_never_raise() -> None:
    chance = random.Random(4)
    alphabet = b'{}[]":, \n\\u0d8=AZaz09+/-_\xff\xc3\xa9'
    values = [bytes(chance.choice(alphabet) for _ in range(chance.randrange(40))) for _ in range(3000)]
    for sample in CORPUS.values():
        if sample.value:
            cut = chance.randrange(len(sample.value))
            values += [sample.value[:cut], sample.value[cut:], sample.value[:cut] + b"\x00" + sample.value[cut:]]
    for value in values:
        assert detect(value, MAX_BYTES).encoding in ENCODINGS, value


def test_doctor_imports_it_without_pyspark() -> None:
    """doctor must answer quickly: the detector and its checks do not start (or even import) Spark."""
    code = "import sys, sensorpipe.doctor; print('pyspark' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
