"""When a reading was taken: the `timestamp` field's forms, and the time of a reading without one.

- A JSON number above `EPOCH_MS_ABOVE` is epoch milliseconds, any other number epoch seconds
  (10^11 s is the year 5138, 10^11 ms the year 1973). Fractions are kept to the microsecond, rounded
  half up, as far as a double holds them (to the microsecond until 2255, as Spark computes it).
- A string is ISO-8601 with a date, a time with seconds or without (`13:35` is `13:35:00`), an optional
  fraction (digits beyond the sixth are dropped) and an offset (`Z`, `+hh:mm` or `+hhmm`, at most
  18:00, as Java allows); `T` or a space between date and time; `t` and `z` as RFC 3339 allows. Without an
  offset the zone would be a guess, so it is invalid.
- The instant must lie in 1970-01-01 .. 9999-12-31 UTC; anything else present is invalid (`bad_timestamp`).
- Missing or JSON null: the receive time the bridge put in the record's headers (epoch ms, decimal
  digits), else the Kafka record's timestamp.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "EPOCH_MS_ABOVE",
    "ISO_8601",
    "LATEST_MICROS",
    "MAX_EPOCH_S",
    "MAX_OFFSET_MINUTES",
    "epoch_micros",
    "iso_micros",
    "number_micros",
    "received_micros",
]

EPOCH_MS_ABOVE = 1e11
MAX_EPOCH_S = 253_402_300_800.0
"""10000-01-01T00:00:00Z: beyond what Python and most clients can hold."""
LATEST_MICROS = int(MAX_EPOCH_S) * 1_000_000 - 1
MAX_OFFSET_MINUTES = 18 * 60
ISO_8601 = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})"
)
"""The form of an ISO-8601 timestamp, unanchored: the same syntax in Python's and Java's regexes."""
RECEIVED_AT = r"[0-9]+"
"""The form of the receive-time header's text."""

_ISO = re.compile(ISO_8601)
_RECEIVED_AT = re.compile(RECEIVED_AT)
_EPOCH = datetime(1970, 1, 1)
_ONE_MICRO = timedelta(microseconds=1)
_LONG_LIMIT = 2**63
_EXACT_HALVES = float(2**52)
_LONG_DIGITS = len(str(_LONG_LIMIT))


def epoch_micros(seconds: float) -> int | None:
    """Microseconds since the epoch of `seconds`, rounded half up; None outside 1970..9999 (and for NaN)."""
    if not 0 <= seconds < MAX_EPOCH_S:
        return None
    micros = seconds * 1_000_000
    if micros < _EXACT_HALVES:
        # Below 2**52 a double's fraction is exact, and it is above, at or below .5 exactly when its
        # shortest decimal form is: the same result as the general case, without a Decimal.
        whole = math.floor(micros)
        return whole + (micros - whole >= 0.5)
    # As Spark's round(): half up, on the double's shortest decimal form, and a double again.
    return int(float(Decimal(repr(micros)).to_integral_value(ROUND_HALF_UP)))


def number_micros(number: float) -> int | None:
    """A `timestamp` number: epoch milliseconds above EPOCH_MS_ABOVE, else epoch seconds."""
    return epoch_micros(number / 1000 if number > EPOCH_MS_ABOVE else number)


def iso_micros(text: str) -> int | None:
    """A `timestamp` string: microseconds since the epoch of ISO-8601 with an offset, else None."""
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute = (int(match[i]) for i in range(1, 6))
    second = int(match[6] or 0)
    micro = int((match[7] or "").ljust(6, "0")[:6])
    zone = match[8]
    offset = 0
    if zone not in "Zz":
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        offset = (hours * 60 + minutes) * (-1 if zone[0] == "-" else 1)
        if minutes > 59 or abs(offset) > MAX_OFFSET_MINUTES:
            return None
    try:
        local = datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        return None
    micros = (local - _EPOCH) // _ONE_MICRO - offset * 60_000_000
    return micros if 0 <= micros <= LATEST_MICROS else None


def received_micros(header: bytes | None, kafka_timestamp: datetime) -> int:
    """When the bridge received the message (its header), else the Kafka record's timestamp."""
    text = None
    if header is not None:
        try:
            text = header.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    # Digits that fit a 64-bit integer (leading zeros are no digits of it), as Spark's cast reads them.
    if text is not None and _RECEIVED_AT.fullmatch(text) and len(text.lstrip("0")) <= _LONG_DIGITS:
        millis = int(text)
        found = epoch_micros(float(millis) / 1000) if millis < _LONG_LIMIT else None
        if found is not None:
            return found
    return (kafka_timestamp.astimezone(UTC).replace(tzinfo=None) - _EPOCH) // _ONE_MICRO
