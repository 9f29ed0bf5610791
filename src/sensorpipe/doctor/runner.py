"""Run every check concurrently: one that raises or hangs becomes a ✗ of its own and never stops the others.

`sensorpipe doctor` and `sensorpipe stack check` both run their checks here; `command` names the one
running, for the fix of a check that crashes or hangs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from sensorpipe.doctor.check import Check, CheckSpec

if TYPE_CHECKING:
    from sensorpipe.config import Settings

logger = logging.getLogger(__name__)


class _Slot:
    """Where one check's thread leaves its result; `done` is set once it is there."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Check | None = None


def _attempt(spec: CheckSpec, settings: Settings, command: str) -> Check:
    """The check's own result, or a ✗ that names the exception (a bug in the check, not in the environment)."""
    try:
        result = spec.run(settings)
    except Exception as e:
        logger.debug("check %s raised", spec.name, exc_info=True)
        return Check(
            spec.name,
            False,
            f"the check itself failed: {type(e).__name__}: {e}",
            f"a bug in `sensorpipe {command}`: run it with -v for the traceback and report it",
        )
    return replace(result, name=spec.name)


def _run_one(spec: CheckSpec, settings: Settings, command: str, slots: dict[str, _Slot]) -> Check:
    for need in spec.needs:
        slot = slots.get(need)
        if slot is None:
            continue
        slot.done.wait()
        if slot.result is None or not slot.result.ok:
            return Check(spec.name, False, f"not checked: {need} failed", f"fix {need} first", skipped=True)
    outcome = _Slot()

    def work() -> None:
        outcome.result = _attempt(spec, settings, command)
        outcome.done.set()

    start = time.monotonic()
    threading.Thread(target=work, name=f"check-{spec.name}", daemon=True).start()
    if not outcome.done.wait(spec.timeout_s) or outcome.result is None:
        return Check(
            spec.name,
            False,
            f"no answer within {spec.timeout_s:g}s",
            f"the service hangs or a firewall drops packets: check it, then run {command} again",
            seconds=spec.timeout_s,
        )
    return replace(outcome.result, seconds=time.monotonic() - start)


def run_checks(
    specs: Sequence[CheckSpec],
    settings: Settings,
    *,
    command: str,
    on_result: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every check's result, in the order of `specs`; independent checks run at the same time.

    A check that needs another waits for it and is skipped when it failed. Each check runs for at most
    its `timeout_s` (its thread is abandoned after that: they are daemon threads). `on_result` gets each
    result in the order of `specs`, as soon as it and every one before it are known: the progress a
    terminal shows.
    """
    slots = {spec.name: _Slot() for spec in specs}

    def drive(spec: CheckSpec) -> None:
        slot = slots[spec.name]
        try:
            result = _run_one(spec, settings, command, slots)
        except Exception as e:  # the runner's own failure: still one line, never a lost check
            result = Check(spec.name, False, f"could not run: {e}", f"report it as a bug in `sensorpipe {command}`")
        slot.result = replace(result, problem=spec.problem)
        slot.done.set()

    threads = [
        threading.Thread(target=drive, args=(spec,), name=f"check-drive-{spec.name}", daemon=True) for spec in specs
    ]
    for thread in threads:
        thread.start()
    results = []
    for spec in specs:
        slot = slots[spec.name]
        slot.done.wait()
        assert slot.result is not None
        if on_result is not None:
            on_result(slot.result)
        results.append(slot.result)
    return results


__all__ = ["run_checks"]
