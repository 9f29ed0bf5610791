"""Kafka record values in every encoding and with every oddity, with the label the stream job gives each.

tests/unit/contract/test_encodings.py checks the contract's `unwrap` (and so the reference decoder) against
the labels; tests/unit/stream/test_decode.py runs the same values through the stream job's Arrow decode.
"""

from __future__ import annotations

import base64
import json
from typing import Any, NamedTuple

from sensorpipe.contract.identity import TopicIds
from sensorpipe.contract.reference import Rules

MAX_BYTES = 4096
"""stream.max_payload_bytes for this corpus."""
RULES = Rules(max_payload_bytes=MAX_BYTES, default_sensor_id="default", topic_ids=TopicIds(("sensors/+/data",)))

READING = {"sensor_id": "s-1", "timestamp": 1712921712.123, "temperature": 21.5, "humidity": 40.25}


class Sample(NamedTuple):
    value: bytes | None
    encoding: str
    decodes: bool


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def envelope(payload: Any, schema: Any = None) -> bytes:
    """A Kafka Connect JsonConverter record (`schemas.enable=true`)."""
    body = {"schema": {"type": "bytes", "optional": False} if schema is None else schema, "payload": payload}
    return json.dumps(body).encode()


def padded(padding: int) -> str:
    """Base64 of the reading, ending in exactly `padding` `=` (spaces appended to the JSON to get there)."""
    text = json.dumps(READING)
    while len(text.encode()) % 3 != (3 - padding) % 3:
        text += " "
    encoded = b64(text.encode())
    assert len(encoded) - len(encoded.rstrip("=")) == padding
    return encoded


def with_inserted(text: str, extra: str) -> bytes:
    middle = len(text) // 2
    return (text[:middle] + extra + text[middle:]).encode()


RAW = json.dumps(READING).encode()
B64 = padded(2)
URL_SAFE = base64.urlsafe_b64encode(json.dumps({**READING, "note": "~~~???>>>"}).encode()).decode()
assert "-" in URL_SAFE or "_" in URL_SAFE
LONG_NUMBER = b'{"temperature": ' + b"1" * 1000 + b"}"
MIME_LINES = "\r\n".join(B64[i : i + 16] for i in range(0, len(B64), 16))

CORPUS: dict[str, Sample] = {
    # the encodings
    "raw_json": Sample(RAW, "raw_json", True),
    "raw_batch": Sample(json.dumps([READING, READING]).encode(), "raw_json", True),
    "raw_with_spaces": Sample(b" \r\n\t" + RAW + b"\n", "raw_json", True),
    "base64_json": Sample(B64.encode(), "base64_json", True),
    "base64_one_pad": Sample(padded(1).encode(), "base64_json", True),
    "base64_no_pad": Sample(padded(0).encode(), "base64_json", True),
    "base64_unpadded": Sample(B64.rstrip("=").encode(), "base64_json", True),
    "base64_mime_lines": Sample(MIME_LINES.encode(), "base64_json", True),
    "base64_leading_space": Sample(b"  " + B64.encode(), "base64_json", True),
    "quoted_base64": Sample(json.dumps(B64).encode(), "quoted_base64", True),
    "quoted_base64_escaped_slash": Sample(
        json.dumps(b64(b'{"a": "???"}')).replace("/", "\\/").encode(), "quoted_base64", True
    ),
    "envelope_raw_json": Sample(envelope(READING, {"type": "struct", "fields": []}), "envelope_raw_json", True),
    "envelope_batch": Sample(envelope([READING]), "envelope_raw_json", True),
    "envelope_json_text": Sample(envelope(json.dumps(READING)), "envelope_raw_json", True),
    "envelope_base64_json": Sample(envelope(B64), "envelope_base64_json", True),
    "envelope_quoted_base64": Sample(envelope(json.dumps(B64)), "envelope_quoted_base64", True),
    "envelope_null_schema": Sample(json.dumps({"schema": None, "payload": B64}).encode(), "envelope_base64_json", True),
    # JSON that is not an object or array, or not JSON at all
    "number": Sample(b"42", "raw_json", False),
    "null": Sample(b"null", "raw_json", False),
    "true": Sample(b"true", "raw_json", False),
    "truncated": Sample(RAW[:-1], "raw_json", False),
    "trailing_brace": Sample(RAW + b"}", "raw_json", False),
    "two_values": Sample(RAW + b" " + RAW, "raw_json", False),
    "nan": Sample(b'{"temperature": NaN}', "raw_json", False),
    "infinity": Sample(b"[Infinity]", "raw_json", False),
    "duplicate_key": Sample(b'{"temperature": 1, "temperature": 2}', "raw_json", False),
    "lone_surrogate": Sample(b'{"sensor_id": "\\ud800"}', "raw_json", False),
    "lone_surrogate_key": Sample(b'{"\\udc00": 1}', "raw_json", False),
    "surrogate_pair": Sample(b'{"sensor_id": "\\ud83d\\ude00", "temperature": 1}', "raw_json", True),
    "number_of_1000_digits": Sample(LONG_NUMBER, "raw_json", True),
    "number_of_1001_digits": Sample(LONG_NUMBER.replace(b"1", b"11", 1), "raw_json", False),
    "too_deep": Sample(b"[" * 1500 + b"]" * 1500, "raw_json", False),
    "form_feed_then_json": Sample(b"\x0c" + RAW, "raw_json", False),
    "bom_then_json": Sample(b"\xef\xbb\xbf" + RAW, "base64_json", False),
    "nbsp_then_json": Sample("\u00a0".encode() + RAW, "base64_json", False),
    "text": Sample(b"hello!", "base64_json", False),
    "key_value_text": Sample(b"temperature=21.5", "base64_json", False),
    # base64 that Spark does not decode, or that decodes to something else than JSON
    "bad_padding": Sample(B64[:-1].encode(), "base64_json", False),
    "extra_padding": Sample((B64 + "=").encode(), "base64_json", False),
    "three_pads": Sample((padded(1) + "==").encode(), "base64_json", False),
    "newline_after_padding": Sample((B64 + "\n").encode(), "base64_json", False),
    "newline_after_unpadded": Sample((padded(0) + "\n").encode(), "base64_json", True),
    "padding_inside": Sample(with_inserted(B64.rstrip("="), "=="), "base64_json", False),
    "url_safe_alphabet": Sample(URL_SAFE.encode(), "base64_json", False),
    "one_symbol_over": Sample((padded(0) + "A").encode(), "base64_json", False),
    "em_space_inside": Sample(with_inserted(B64, "\u2003"), "base64_json", True),
    "nbsp_inside": Sample(with_inserted(B64, "\u00a0"), "base64_json", False),
    "form_feed_inside": Sample(with_inserted(B64, "\x0c"), "base64_json", True),
    "base64_of_text": Sample(b64(b"temperature=21").encode(), "base64_json", False),
    "base64_of_number": Sample(b64(b"42").encode(), "base64_json", False),
    "base64_not_utf8": Sample(b64(b"\xff\xfe\xfd").encode(), "base64_json", False),
    "base64_of_base64": Sample(b64(B64.encode()).encode(), "base64_json", False),
    "json_string_not_base64": Sample(b'"just text"', "quoted_base64", False),
    "json_string_of_json": Sample(json.dumps(json.dumps(READING)).encode(), "quoted_base64", False),
    # envelopes
    "envelope_without_payload": Sample(json.dumps({"schema": {"type": "bytes"}}).encode(), "raw_json", True),
    "payload_without_schema": Sample(json.dumps({"payload": B64}).encode(), "raw_json", True),
    "envelope_number": Sample(envelope(7), "unknown", False),
    "envelope_null": Sample(b'{"schema": null, "payload": null}', "unknown", False),
    "envelope_empty_string": Sample(envelope(""), "unknown", False),
    "envelope_blank_string": Sample(envelope(" \n"), "unknown", False),
    "envelope_bad_base64": Sample(envelope("hello!"), "envelope_base64_json", False),
    "envelope_quoted_not_base64": Sample(envelope(json.dumps("hello!")), "envelope_quoted_base64", False),
    "envelope_string_of_number": Sample(envelope("42"), "envelope_raw_json", False),
    "envelope_truncated_json": Sample(envelope(json.dumps(READING)[:-1]), "envelope_raw_json", False),
    "nested_envelope": Sample(envelope(json.loads(envelope(READING))), "envelope_raw_json", True),
    "base64_of_envelope": Sample(b64(envelope(READING)).encode(), "base64_json", True),
    "envelope_duplicate_key": Sample(b'{"schema": 1, "payload": "x", "payload": "y"}', "raw_json", False),
    # nothing to detect
    "none": Sample(None, "unknown", False),
    "empty": Sample(b"", "unknown", False),
    "blank": Sample(b" \n\t\r ", "unknown", False),
    "next_line_alone": Sample("  \u0085".encode(), "unknown", False),
    "line_separator_alone": Sample("\u2028".encode(), "unknown", False),
    "two_next_lines": Sample("\u0085\u0085".encode(), "base64_json", False),
    "not_utf8": Sample(b'\xff\xfe{"temperature": 1}', "unknown", False),
    "utf8_surrogate": Sample(b'{"a": "\xed\xa0\x80"}', "unknown", False),
    "overlong_utf8": Sample(b"\xc0\xaf", "unknown", False),
    "largest_allowed": Sample(json.dumps({**READING, "pad": ""}).encode().ljust(MAX_BYTES, b" "), "raw_json", True),
    "oversized": Sample(json.dumps({**READING, "pad": "x" * MAX_BYTES}).encode(), "unknown", False),
    "oversized_base64": Sample(B64.encode() * (MAX_BYTES // len(B64) + 1), "unknown", False),
}
