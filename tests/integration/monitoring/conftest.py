"""The monitoring modules' pipeline: one bridge and stream job for all of them, stopped when they are done
(a stream job left idling until the end of the session costs the other tests' CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline_support import Pipeline


@pytest.fixture(scope="package")
def pipeline(stack_config: Path) -> Iterator[Pipeline]:
    """Bridge and stream job running after a short simulated run, with rows in every table (started once)."""
    running = Pipeline(stack_config)
    try:
        running.start()
        yield running
    finally:
        running.stop()
