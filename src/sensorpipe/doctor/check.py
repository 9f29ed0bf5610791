"""One check and its result: the type both `sensorpipe doctor` and `sensorpipe stack check` are made of."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: importing the framework stays free of pydantic and the settings
    from sensorpipe.config import Settings


@dataclass(frozen=True)
class Check:
    """The result of one check: what was checked, whether it passed, what was found, what to do."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    """None when it passed, or when `detail` says the fix itself (a round trip's error: cause and fix in one line)."""
    problem: int | None = None
    """The row of the table of ten problems (docs/design.md) this check detects, if any."""
    skipped: bool = False
    """Not run because a check it needs failed (counts as failed: the cause is reported above it)."""
    seconds: float = 0.0


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def split_fix(message: str) -> tuple[str, str]:
    """`cause: fix`, as sensorpipe's error messages are worded, split at the last top-level `: `.

    Colons inside parentheses (a driver's own message) do not count; a message without one is all cause.
    """
    depth = 0
    cut = -1
    for i, char in enumerate(message):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == ":" and depth == 0 and message[i + 1 : i + 2] == " ":
            cut = i
    if cut < 0:
        return message, "see the message"
    return message[:cut], message[cut + 2 :]


@dataclass(frozen=True)
class CheckSpec:
    """A check to run: `run` returns its `Check` (any exception it raises becomes a ✗ of its own)."""

    name: str
    run: Callable[[Settings], Check]
    problem: int | None = None
    needs: tuple[str, ...] = field(default_factory=tuple)
    """Names of checks that must pass first (an endpoint before a login to it); otherwise this one is skipped."""
    timeout_s: float = 15.0


__all__ = ["Check", "CheckSpec", "failed", "passed", "split_fix"]
