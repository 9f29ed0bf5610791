"""Fixtures of the integration tests that run the stream job: a migrated database and a lane per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sensorpipe.config import Settings
from sensorpipe.storage.migrate import migrate
from tests.stream_support import Lane


@pytest.fixture(scope="module")
def migrated(stack_settings: Settings) -> Settings:
    migrate(stack_settings)
    return stack_settings


@pytest.fixture
def lane(migrated: Settings) -> Iterator[Lane]:
    yield Lane(migrated)
