"""Which encoding a Kafka record's value is in, in plain Python: what the stream job's `encoding` column says.

`sensorpipe doctor` samples the topic with it (problem 4 of docs/design.md) without starting Spark, so it must
label every record exactly as `stream/decode.py` does (tests/integration/stream/test_decode.py compares the two
on one corpus). It follows the Spark expressions step by step, including their edges:

- JSON is what Spark's `parse_json` accepts: no NaN/Infinity, no duplicate keys, no lone surrogate
  escapes, at most 1000 digits in a number. One difference: nesting deeper than Python's recursion
  limit allows (a little under 1000 levels; Spark takes up to 999) is not JSON here.
- "blank" and "starts like JSON" use Java's regex `\\s` (space, \\t, \\n, \\x0b, \\f, \\r), and Java's `$`
  also matches before one final line terminator (so a lone U+0085 is blank);
- base64 is Spark's `to_binary(..., 'base64')`: RFC 4648 alphabet (not the URL-safe one), Java
  whitespace anywhere before the padding, none after it, unpadded last groups of 2 or 3 symbols.

Only detection: whether a record is a valid reading (fields, types, ranges) is the stream job's business.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ENCODINGS", "WRAPPED", "Detected", "detect"]

ENCODINGS = (
    "raw_json",
    "base64_json",
    "quoted_base64",
    "envelope_raw_json",
    "envelope_base64_json",
    "envelope_quoted_base64",
    "unknown",
)
"""The values of the stream job's `encoding` column (and of its records-per-encoding metric)."""
WRAPPED = frozenset(ENCODINGS) - {"raw_json", "unknown"}
"""Encodings in which something wrapped the payload on its way to Kafka (the bridge never does)."""

_MAX_NUMBER_DIGITS = 1000  # Jackson's StreamReadConstraints default, which Spark's parse_json keeps
_REGEX_SPACE = " \t\n\x0b\x0c\r"  # `\s` in a Java regex (Spark's rlike, regexp_extract)
_LINE_END = r"(?:\r\n|[\n\r\u0085\u2028\u2029])"  # what Java's `$` may precede at the very end
_BLANK = re.compile(f"[{_REGEX_SPACE}]*{_LINE_END}?")
_JSON_START = re.compile(f"[{_REGEX_SPACE}]*[\\[{{]")
# Java's Character.isWhitespace: ASCII separators and Unicode space separators except the non-breaking ones.
_JAVA_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000"
_BASE64 = re.compile(f"([A-Za-z0-9+/{_JAVA_WHITESPACE}]*)(=*)")
_WHITESPACE_RUN = re.compile(f"[{_JAVA_WHITESPACE}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class Detected:
    encoding: str
    """One of ENCODINGS: the label Spark's `decode` gives the record."""
    decodes: bool
    """After unwrapping, the value is one JSON object or array (a reading or a batch, valid or not)."""


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def _integer(text: str) -> int:
    if len(text) - text.startswith("-") > _MAX_NUMBER_DIGITS:
        raise _NotJson("number too long")
    return 0  # only the structure matters here: no need to convert


def _fraction(text: str) -> float:
    if sum(c.isdigit() for c in text) > _MAX_NUMBER_DIGITS:
        raise _NotJson("number too long")
    return 0.0


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _NotJson("duplicate key")
    return found


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_int=_integer, parse_float=_fraction, parse_constant=_no_constant
)
_ABSENT = object()


def _has_lone_surrogate(value: Any) -> bool:
    """A `\\ud800`-style escape without its pair survives Python's parser as a surrogate; Spark refuses it."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
    return False


def _json(text: str) -> Any:
    """The value when `text` is exactly one JSON value (white space around it allowed), else _ABSENT."""
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return _ABSENT
    # Only an escape can make a surrogate here (the text is valid UTF-8): walk the value only then.
    return _ABSENT if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value) else value


def _unbase64(text: str) -> bytes | None:
    """The bytes of base64 text as Spark's `try_to_binary(text, 'base64')` reads it, else None."""
    match = _BASE64.fullmatch(text)
    if match is None:
        return None
    symbols = _WHITESPACE_RUN.sub("", match[1])
    remainder, padding = len(symbols) % 4, len(match[2])
    # A last group of 1 symbol never; padding only completes a last group of 2 or 3 symbols to 4.
    if remainder == 1 or (padding and (padding > 2 or padding != 4 - remainder)):
        return None
    return base64.b64decode(symbols + "=" * (-len(symbols) % 4))


def _decodes_from_base64(text: str) -> bool:
    try:
        decoded = _unbase64(text)
        inner = decoded.decode("utf-8") if decoded is not None else None
    except (binascii.Error, UnicodeDecodeError):
        return False
    return inner is not None and isinstance(_json(inner), dict | list)


def _unwrap(text: str, value: Any) -> Detected | None:
    """Layer 2 of decode.py: JSON as it is, a JSON string holding base64, or base64 text; None: nothing."""
    if value is not _ABSENT:
        if isinstance(value, str):
            return Detected("quoted_base64", _decodes_from_base64(value))
        return Detected("raw_json", isinstance(value, dict | list))
    if _JSON_START.match(text):
        return Detected("raw_json", False)
    if _BLANK.fullmatch(text):
        return None
    return Detected("base64_json", _decodes_from_base64(text))


def detect(value: bytes | None, max_bytes: int) -> Detected:
    """The encoding of one Kafka record value, as the stream job labels it; `max_bytes`: stream.max_payload_bytes."""
    unknown = Detected("unknown", False)
    if value is None or len(value) > max_bytes:
        return unknown
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return unknown
    parsed = _json(text)
    envelope = isinstance(parsed, dict) and "schema" in parsed and "payload" in parsed
    if envelope:
        inner = parsed["payload"]
        if isinstance(inner, dict | list):
            return Detected("envelope_raw_json", True)
        if not isinstance(inner, str):
            return unknown
        text, parsed = inner, _json(inner)
    found = _unwrap(text, parsed)
    if found is None:
        return unknown
    return Detected(f"envelope_{found.encoding}", found.decodes) if envelope else found
