"""What counts as JSON in the data contract: what Spark's `parse_json` accepts, read in plain Python.

The decoder (contract/reference.py, which the stream job runs) and the bridge parse with `parse`, which
accepts exactly the texts Spark's `try_parse_json` does (the stream job decoded with it until 2026-12-08):

- no NaN/Infinity literals, no duplicate keys, no lone surrogate escapes (`\\ud800`), at most 1000
  digits in a number (Jackson's StreamReadConstraints, which Spark keeps);
- nesting at most `MAX_DEPTH` levels deep (Jackson allows 1000; the stream job parses the text inside
  a one-level wrapper to tell that it is exactly one value, so a payload gets one level less);
- white space around the value: space, tab, line feed, carriage return.

Numbers are kept as written (`Number`): Spark types a number from its text (a 64-bit integer, a decimal
of up to 38 digits, else a double) and a sensor id must be an integer, not any number.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, Final

__all__ = ["ABSENT", "MAX_DEPTH", "Number", "has_nul", "json_type", "parse", "render"]

MAX_DEPTH = 999
_MAX_NUMBER_DIGITS = 1000
_LONG = range(-(2**63), 2**63)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_LITERALS: Final = {True: "true", False: "false", None: "null"}


class _Absent:
    """Not one JSON value (a sentinel: JSON null is None)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


@dataclass(frozen=True, slots=True)
class Number:
    """A JSON number as written in the payload."""

    text: str
    integer: bool
    """Written without a fraction or an exponent."""

    @property
    def value(self) -> float:
        """As a double, the way Spark reads every number for a measurement (beyond its range: ±inf)."""
        return float(self.text)

    @property
    def is_long(self) -> bool:
        """An integer that fits 64 bits: what Spark's VARIANT holds as an integer (a larger one is a decimal)."""
        return self.integer and int(self.text) in _LONG


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def _integer(text: str) -> Number:
    if len(text) - text.startswith("-") > _MAX_NUMBER_DIGITS:
        raise _NotJson("number too long")
    return Number(text, True)


def _fraction(text: str) -> Number:
    if len(text) > _MAX_NUMBER_DIGITS and sum(c.isdigit() for c in text) > _MAX_NUMBER_DIGITS:
        raise _NotJson("number too long")
    return Number(text, False)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _NotJson("duplicate key")
    return found


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_int=_integer, parse_float=_fraction, parse_constant=_no_constant
)


def _too_deep(text: str) -> bool:
    depth = 0
    for token in _STRUCTURE.finditer(text):
        bracket = token[0]
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


@contextlib.contextmanager
def _room_for_nesting() -> Iterator[None]:
    """Python's parser recurses once per level: let it reach MAX_DEPTH whatever the caller's stack."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(before + MAX_DEPTH + 100)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def _walk(value: Any) -> Iterator[Any]:
    """Every value, key and container inside `value`, without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        yield item
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())


def _has_lone_surrogate(value: Any) -> bool:
    return any(isinstance(item, str) and _SURROGATE.search(item) for item in _walk(value))


def parse(text: str) -> Any:
    """The value of `text` when it is exactly one JSON value (white space around it allowed), else ABSENT.

    Objects are dicts, arrays lists, numbers `Number`s, strings str, true/false bool, null None.
    """
    deep = text.count("[") + text.count("{") > MAX_DEPTH // 2
    if deep and _too_deep(text):
        return ABSENT
    try:
        with _room_for_nesting() if deep else contextlib.nullcontext():
            value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return ABSENT
    # Only an escape can make a surrogate here (the text is valid UTF-8): walk the value only then.
    return ABSENT if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value) else value


def has_nul(value: Any) -> bool:
    """A `\\u0000` in a string or key: jsonb cannot store it."""
    return any(isinstance(item, str) and "\x00" in item for item in _walk(value))


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, for reject details."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Number):
        return "an integer" if value.integer else "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def render(value: Any, *, integers_verbatim: bool) -> str:
    """JSON text of a parsed value as the stream job renders a value it re-serialises (no white space).

    Spark writes a number beyond double range as the string "Infinity" (or "-Infinity"): every such
    number when it renders a VARIANT (`integers_verbatim=False`), only those with a fraction or an
    exponent when its JSON reader copies a batch element (`integers_verbatim=True`). Other numbers keep
    their value; a few may change their spelling (21.50 → 21.5), which no JSON reader tells apart.
    """
    parts: list[str] = []
    with _room_for_nesting():
        _render(value, integers_verbatim, parts)
    return "".join(parts)


def _render(value: Any, integers_verbatim: bool, parts: list[str]) -> None:
    if isinstance(value, dict):
        parts.append("{")
        for i, (key, item) in enumerate(value.items()):
            parts.append("," if i else "")
            parts.append(encode_basestring(key) + ":")
            _render(item, integers_verbatim, parts)
        parts.append("}")
    elif isinstance(value, list):
        parts.append("[")
        for i, item in enumerate(value):
            parts.append("," if i else "")
            _render(item, integers_verbatim, parts)
        parts.append("]")
    elif isinstance(value, Number):
        number = value.value
        if math.isinf(number) and not (integers_verbatim and value.integer):
            parts.append('"Infinity"' if number > 0 else '"-Infinity"')
        else:
            parts.append(value.text)
    elif isinstance(value, str):
        parts.append(encode_basestring(value))  # what json.dumps(value, ensure_ascii=False) gives
    else:
        parts.append(_LITERALS[value])
