"""A reading's time: epoch seconds, epoch milliseconds, ISO-8601 with an offset; else the receive time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensorpipe.contract.timestamps import LATEST_MICROS, epoch_micros, iso_micros, number_micros, received_micros

READING_US = 1_712_921_712_123_000  # 2024-04-12T11:35:12.123Z
KAFKA = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KAFKA_US = 1_767_323_045_000_000


@pytest.mark.parametrize(
    ("number", "micros"),
    [
        (1712921712.123, READING_US),
        (1712921712123, READING_US),
        (1e11, 100_000_000_000_000_000),
        (1e11 + 1, 100_000_000_001_000),
        (0, 0),
        (-0.0, 0),
        (5e-7, 1),  # half a microsecond rounds up
        (4.9e-7, 0),
        (-1, None),
        (-0.1, None),
        (1e30, None),
        # milliseconds: the last one of 9999, in microseconds as near as a double gets (2^53 µs is 2255)
        (253_402_300_799_999, 253_402_300_799_999_008),
        (253_402_300_800_000, None),
        (float("inf"), None),
        (float("nan"), None),
    ],
)
def test_numbers_are_epoch_seconds_or_above_10_to_the_11_milliseconds(number: float, micros: int | None) -> None:
    assert number_micros(number) == micros


@given(st.floats(min_value=0, max_value=2**53 / 1e6) | st.integers(0, 2**33).map(lambda n: n / 2e6))
def test_rounding_without_a_decimal_gives_what_rounding_the_shortest_decimal_form_gives(seconds: float) -> None:
    """Below 2**52 µs the fast path of `epoch_micros`; above it, the Decimal it stands for (the same thing)."""
    assert epoch_micros(seconds) == int(float(Decimal(repr(seconds * 1_000_000)).to_integral_value(ROUND_HALF_UP)))


def test_seconds_must_lie_before_the_year_10000() -> None:
    assert epoch_micros(253_402_300_799.999) == 253_402_300_799_999_008
    assert epoch_micros(253_402_300_800.0) is None


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("2024-04-12T13:35:12.123+02:00", READING_US),
        ("2024-04-12T11:35:12.123Z", READING_US),
        ("2024-04-12t11:35:12.123z", READING_US),
        ("2024-04-12 11:35:12.123Z", READING_US),
        ("2024-04-12T13:35:12.123+0200", READING_US),
        ("2024-04-12T11:35Z", READING_US - 12_123_000),
        ("2024-04-12T11:35:12.123456789Z", READING_US + 456),  # beyond micros: dropped, not rounded
        ("2024-04-12T11:35:12.9999999Z", READING_US - 123_000 + 999_999),
        ("2024-04-12T11:35:12-00:00", READING_US - 123_000),
        ("2024-04-13T05:35:12.123+18:00", READING_US),
        ("2024-04-11T17:35:12.123-1800", READING_US),
        ("1969-12-31T23:00:00-01:00", 0),
        ("9999-12-31T23:59:59.999999Z", LATEST_MICROS),
        # invalid
        ("2024-04-12T11:35:12.123", None),  # no offset: the zone would be a guess
        ("2024-04-12T11:35:12+02", None),
        ("2024-04-12T11:35:12+18:30", None),  # beyond what Java allows
        ("2024-04-12T11:35:12+01:60", None),
        ("2024-04-12T24:00:00Z", None),
        ("2024-04-12T23:59:60Z", None),
        ("2023-02-29T00:00:00Z", None),
        ("2024-13-01T00:00:00Z", None),
        ("0000-01-01T00:00:00Z", None),
        ("1969-12-31T23:59:59Z", None),
        ("9999-12-31T23:59:59-01:00", None),
        ("2024-04-12T11:35:12Z\n", None),
        (" 2024-04-12T11:35:12Z", None),
        ("2024-04-12T11:35:12.Z", None),
        ("2024-04-12T1:35:12Z", None),
        ("2024-04-12T11:35:12,5Z", None),
        ("\uff12\uff10\uff12\uff14-04-12T11:35:12Z", None),  # full-width digits are no digits here
        ("yesterday", None),
    ],
)
def test_strings_are_iso_8601_with_an_offset(text: str, micros: int | None) -> None:
    assert iso_micros(text) == micros


@pytest.mark.parametrize(
    ("header", "micros"),
    [
        (b"1712921712123", READING_US),
        (b"0001712921712123", READING_US),
        (b"0", 0),
        (None, KAFKA_US),
        (b"", KAFKA_US),
        (b" 1712921712123", KAFKA_US),
        (b"+1712921712123", KAFKA_US),
        (b"-5", KAFKA_US),
        (b"1712921712123.0", KAFKA_US),
        (b"\xff", KAFKA_US),
        (b"9" * 19, KAFKA_US),
        (b"9" * 5000, KAFKA_US),
        (b"253402300800000", KAFKA_US),
    ],
)
def test_the_receive_time_is_the_bridges_header_else_the_kafka_timestamp(header: bytes | None, micros: int) -> None:
    assert received_micros(header, KAFKA) == micros
