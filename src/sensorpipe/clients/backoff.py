"""Exponential backoff with full jitter, shared by everything that reconnects (the original problem 9).

Full jitter (a uniform delay between 0 and the current cap) keeps many clients that lost the same broker
from reconnecting in lock step when it comes back.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays for attempt after attempt: the cap doubles from `initial_s` up to `max_s`, never giving up."""

    def __init__(self, initial_s: float = 0.1, max_s: float = 10.0, rng: random.Random | None = None) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self.attempts = 0
        self._rng = rng or random.Random()

    @property
    def cap_s(self) -> float:
        """The longest delay the next attempt may wait."""
        return min(self.max_s, self.initial_s * float(2 ** min(self.attempts, 32)))

    def next_delay(self) -> float:
        """The delay before the next attempt; counts the attempt."""
        delay = self._rng.uniform(0, self.cap_s)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """After a success the next failure starts from `initial_s` again."""
        self.attempts = 0
