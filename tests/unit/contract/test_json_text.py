"""What counts as JSON: what Spark's parse_json accepts (tests/encoding_corpus.py holds the edges Spark showed)."""

from __future__ import annotations

import pytest

from sensorpipe.contract.json_text import ABSENT, MAX_DEPTH, Number, has_nul, parse, render


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        " [1, 2.5, -0, 1e400] ",
        '{"a": "\\ud83d\\ude00"}',
        "1" * 1000,
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        '{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}",
    ],
)
def test_json_spark_accepts(text: str) -> None:
    assert parse(text) is not ABSENT


@pytest.mark.parametrize(
    "text",
    [
        "",
        "NaN",
        '{"a": Infinity}',
        '{"a": 1, "a": 2}',
        '{"a": "\\ud800"}',
        "1" * 1001,
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}",
        '{"a": 1} x',
        '{"a": 1},0]',
        "\x0c{}",
        '{"a": "\t"}',
    ],
)
def test_json_spark_refuses(text: str) -> None:
    assert parse(text) is ABSENT


def test_numbers_keep_their_text_and_tell_a_64_bit_integer() -> None:
    value = parse("[42, -9223372036854775808, 9223372036854775808, 4.0, 4e0, 1e400]")
    assert [n.text for n in value] == ["42", "-9223372036854775808", "9223372036854775808", "4.0", "4e0", "1e400"]
    assert [n.is_long for n in value] == [True, True, False, False, False, False]
    assert value[5].value == float("inf")
    assert Number("21.50", False).value == 21.5


def test_nul_escapes_are_found_in_values_and_keys_only_when_they_are_nul() -> None:
    assert has_nul(parse('{"a": ["x\\u0000"]}'))
    assert has_nul(parse('{"\\u0000": 1}'))
    assert not has_nul(parse('{"a": "\\\\u0000"}'))


def test_rendering_writes_numbers_beyond_double_range_as_spark_does() -> None:
    value = parse('{"a": [1, 21.50, "é"], "b": 1e400, "c": -1e400, "d": 1' + "0" * 400 + "}")
    big = "1" + "0" * 400
    assert render(value, integers_verbatim=True) == f'{{"a":[1,21.50,"é"],"b":"Infinity","c":"-Infinity","d":{big}}}'
    assert render(value, integers_verbatim=False).endswith('"d":"Infinity"}')
