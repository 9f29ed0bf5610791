"""How a Kafka record's value is encoded, and the JSON inside it: the record-level half of the data contract.

Accepted, detected per record (docs/design.md, "Data contract"): raw JSON; base64 of JSON; a JSON
string holding base64 of JSON (what Kafka Connect's JsonConverter writes for bytes); a Kafka Connect
envelope `{"schema": …, "payload": …}` around any of these. `unwrap` peels one record in plain Python;
its edges are those of the Spark Column expressions the stream job decoded with until 2026-12-08, kept
so that a record is judged as it always was:

- JSON is `json_text.parse`;
- "blank" and "starts like JSON" use Java's regex `\\s` (space, \\t, \\n, \\x0b, \\f, \\r), and Java's `$`
  also matches before one final line terminator (so a lone U+0085 is blank);
- base64 is Spark's `to_binary(..., 'base64')`: RFC 4648 alphabet (not the URL-safe one), Java
  white space anywhere before the padding, none after it, unpadded last groups of 2 or 3 symbols.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from sensorpipe.contract.json_text import ABSENT, json_type, parse, render
from sensorpipe.contract.reasons import Reason

__all__ = ["ENCODINGS", "WRAPPED", "Unwrapped", "unwrap"]

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

_REGEX_SPACE = " \t\n\x0b\x0c\r"  # `\s` in a Java regex (Spark's rlike, regexp_extract)
_LINE_END = r"(?:\r\n|[\n\r\u0085\u2028\u2029])"  # what Java's `$` may precede at the very end
_BLANK = re.compile(f"[{_REGEX_SPACE}]*{_LINE_END}?")
_JSON_START = re.compile(f"[{_REGEX_SPACE}]*[\\[{{]")
# Java's Character.isWhitespace: ASCII separators and Unicode space separators except the non-breaking ones.
_JAVA_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000"
_BASE64 = re.compile(f"([A-Za-z0-9+/{_JAVA_WHITESPACE}]*)(=*)")
_WHITESPACE_RUN = re.compile(f"[{_JAVA_WHITESPACE}]+")


@dataclass(frozen=True)
class Unwrapped:
    """One record's value after its wrappings were peeled off."""

    encoding: str
    """One of ENCODINGS: the label the stream job gives the record."""
    text: str | None
    """The JSON text inside (for an envelope's object: as the stream job renders it)."""
    value: Any
    """`text` parsed (json_text.parse), ABSENT when it is not one JSON value."""
    reject: tuple[Reason, str] | None
    """Why the record as a whole is invalid (reason, detail), None when its readings are to be checked."""
    rendered: bool = False
    """`text` was rendered by Spark from an envelope's object, not taken from the record."""

    @property
    def unwrapped(self) -> bool:
        """One JSON object or array came out (a reading or a batch, valid or not)."""
        return isinstance(self.value, dict | list)


def _blank(text: str) -> bool:
    return _BLANK.fullmatch(text) is not None


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
    try:
        return base64.b64decode(symbols + "=" * (-len(symbols) % 4))
    except binascii.Error:
        return None


def _utf8(data: bytes | None) -> str | None:
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and "schema" in value and "payload" in value


def _reject(encoding: str, reason: Reason, detail: str, value: Any = ABSENT) -> Unwrapped:
    return Unwrapped(encoding, None, value, (reason, detail))


def _text(data: bytes, max_bytes: int) -> str | Unwrapped:
    """The record's text, or its reject when it has none."""
    if len(data) > max_bytes:
        return _reject("unknown", Reason.PAYLOAD_TOO_LARGE, f"{len(data)} bytes, more than {max_bytes}")
    text = _utf8(data)
    if not data or (text is not None and _blank(text)):
        return _reject("unknown", Reason.EMPTY, "no payload")
    if text is None:
        return _reject("unknown", Reason.UNDECODABLE, "the payload is not UTF-8 text")
    return text


def _kind(text: str, value: Any) -> str | None:
    """Layer 2: JSON as it is, a JSON string holding base64, or base64 text; None: blank."""
    if isinstance(value, str):
        return "quoted_base64"
    if value is not ABSENT or _JSON_START.match(text):
        return "raw_json"
    return None if _blank(text) else "base64_json"


def _checked(encoding: str, text: str, value: Any, rendered: bool) -> Unwrapped:
    """The JSON inside, or the record's reject when it is not a reading or a batch."""
    if value is ABSENT:
        return _reject(
            encoding,
            Reason.NOT_JSON,
            "the decoded payload is not one JSON value (or holds a lone surrogate escape such as \\ud800)",
        )
    if not isinstance(value, dict | list):
        return _reject(encoding, Reason.NOT_AN_OBJECT, f"the payload is {json_type(value)}", value)
    if _is_envelope(value):
        return _reject(encoding, Reason.NESTED_ENVELOPE, "an envelope inside an envelope or inside base64", value)
    return Unwrapped(encoding, text, value, None, rendered)


def unwrap(data: bytes | None, max_bytes: int) -> Unwrapped:
    """Peel one Kafka record value; `max_bytes` is stream.max_payload_bytes."""
    outer = _text(data or b"", max_bytes)
    if isinstance(outer, Unwrapped):
        return outer
    # Layer 1: a Connect envelope's payload, as text (a string payload is the text it holds).
    text, value, rendered = outer, parse(outer), False
    envelope = _is_envelope(value)
    if envelope:
        inner = value["payload"]
        if isinstance(inner, dict | list):
            text, value, rendered = render(inner, integers_verbatim=False), inner, True
        elif isinstance(inner, str):
            text, value = inner, parse(inner)
        else:
            return _reject("unknown", Reason.NOT_AN_OBJECT, f"the envelope's payload is {json_type(inner)}")
    kind = _kind(text, value)
    encoding = "unknown" if kind is None else ("envelope_" if envelope else "") + kind
    if kind != "raw_json":
        decoded = _utf8(_unbase64(value if kind == "quoted_base64" else text))
        if decoded is None:
            return _reject(encoding, Reason.UNDECODABLE, "neither JSON nor base64 of UTF-8 text")
        text, value = decoded, parse(decoded)
    return _checked(encoding, text, value, rendered)
