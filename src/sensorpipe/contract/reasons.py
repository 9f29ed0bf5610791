"""Why a record or a reading is rejected: the machine-readable `reason` of the dead-letter path."""

from __future__ import annotations

import enum

__all__ = ["REASONS", "Reason"]


class Reason(enum.StrEnum):
    """Reject reasons; when several apply, the first in this order is given."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    """Larger than stream.max_payload_bytes: rejected before anything reads it."""
    EMPTY = "empty"
    """No bytes, only white space, or a batch without readings."""
    UNDECODABLE = "undecodable"
    """Not UTF-8 text, or base64 that is not."""
    NOT_JSON = "not_json"
    """Not exactly one JSON value (or one jsonb cannot store: a `\\u0000` escape)."""
    NOT_AN_OBJECT = "not_an_object"
    """JSON, but neither a reading (object) nor a batch of them (array); or an element that is not an object."""
    NESTED_ENVELOPE = "nested_envelope"
    """A Kafka Connect envelope inside an envelope or inside base64."""
    WRONG_TYPE = "wrong_type"
    """A sensor id that is not a string or an integer; a measurement that is not a number."""
    MISSING_VALUES = "missing_values"
    """None of the declared measurements."""
    NOT_FINITE = "not_finite"
    """A measurement beyond double range (1e400)."""
    OUT_OF_RANGE = "out_of_range"
    """A measurement outside its declared range."""
    BAD_TIMESTAMP = "bad_timestamp"
    """A timestamp that is not epoch seconds, epoch milliseconds or ISO-8601 with an offset, in 1970..9999."""


REASONS = tuple(reason.value for reason in Reason)
"""Every reason, in the order they are checked."""
