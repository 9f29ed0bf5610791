"""A lake commit and a compaction killed (SIGKILL) at any moment, on the session stack's real S3 server:
done again afterwards, every reading is in `raw` once, none lost, none twice."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event

import pyarrow as pa
import pytest

from sensorpipe.config import Settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.storage.lake import RAW, delta_table, read_dataset
from sensorpipe.storage.lake_upkeep import maintain
from sensorpipe.storage.s3 import delete_prefix, ensure_bucket, s3_client
from sensorpipe.storage.staging import stage, staged_files
from sensorpipe.stream.lake_commit import LakeCommits

pytestmark = pytest.mark.integration

START = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
KILL_AT = (0.1, 0.5, 0.8, 0.95)
"""When each attempt is killed, as a share of how long a whole commit takes: before, during and after
its Delta commit (the exit codes, versions and staged files of each attempt are in the assertion)."""


def _metadata(_settings: Settings) -> list[tuple[str, str | None, str | None, str | None]]:
    return []


def _readings(partition: int, first: int, count: int) -> pa.Table:
    offsets = range(first, first + count)
    return pa.table(
        {
            "time": pa.array([START + timedelta(milliseconds=o) for o in offsets], pa.timestamp("us", tz="UTC")),
            "sensor_id": [f"sensor-{o % 50}" for o in offsets],
            "temperature": [20.0 + o % 100 / 10 for o in offsets],
            "humidity": [50.0] * count,
            "raw_data": ['{"sensor_id": "x"}'] * count,
            "time_source": ["payload"] * count,
            "kafka_partition": pa.array([partition] * count, pa.int32()),
            "kafka_offset": pa.array(list(offsets), pa.int64()),
        }
    ).select(list(READING_COLUMNS))


def _commit(settings: Settings, started: Event) -> None:
    started.set()
    LakeCommits(settings, "topic-id", _metadata).commit()


def _maintain(settings: Settings, started: Event) -> None:
    started.set()
    maintain(settings, RAW)


def _killed(target: Callable[[Settings, Event], None], settings: Settings, after_s: float) -> int | None:
    """Run `target(settings, started)` in a process of its own and SIGKILL it `after_s` after it started;
    its exit code (-9: killed before it was done)."""
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    process = context.Process(target=target, args=(settings, started))
    process.start()
    assert started.wait(60), "the process did not start"
    process.join(after_s)
    if process.is_alive():
        os.kill(process.pid or 0, signal.SIGKILL)
    process.join(30)
    return process.exitcode


@pytest.fixture
def lake(stack_settings: Settings) -> Iterator[Settings]:
    bucket = f"crash-{uuid.uuid4().hex[:12]}"
    settings = stack_settings.model_copy(update={"s3": stack_settings.s3.model_copy(update={"bucket": bucket})})
    assert ensure_bucket(settings.s3)
    yield settings
    delete_prefix(settings.s3, bucket, "")
    s3_client(settings.s3).delete_bucket(Bucket=bucket)


def _version(settings: Settings) -> int | None:
    table = delta_table(settings, RAW)
    return None if table is None else table.version()


def _keys(settings: Settings) -> list[tuple[int, int]]:
    rows = read_dataset(settings, RAW, columns=["kafka_partition", "kafka_offset"]).to_pylist()
    return sorted((r["kafka_partition"], r["kafka_offset"]) for r in rows)


def _stage_more(settings: Settings, batch: int, expected: list[tuple[int, int]]) -> None:
    """30,000 readings more on each of two Kafka partitions, staged as `batch`."""
    for partition in (0, 1):
        first = len([k for k in expected if k[0] == partition])
        stage(settings, batch, partition, _readings(partition, first, 30_000))
        expected += [(partition, o) for o in range(first, first + 30_000)]


def test_a_lake_commit_killed_at_any_moment_lands_each_reading_once_when_done_again(lake: Settings) -> None:
    expected: list[tuple[int, int]] = []
    _stage_more(lake, 0, expected)
    started = time.monotonic()
    assert _killed(_commit, lake, 300) == 0  # not killed: how long a whole commit takes here
    whole_s = time.monotonic() - started
    outcomes = []
    for batch, fraction in enumerate(KILL_AT, start=1):
        _stage_more(lake, batch, expected)
        outcomes.append((_killed(_commit, lake, fraction * whole_s), _version(lake), len(staged_files(lake))))
    assert any(code == -signal.SIGKILL for code, _version_after, _staged in outcomes), outcomes
    LakeCommits(lake, "topic-id", _metadata).commit()
    assert staged_files(lake) == []
    assert _keys(lake) == sorted(expected)


def test_compaction_killed_at_any_moment_keeps_every_reading_once(lake: Settings) -> None:
    commits = LakeCommits(lake, "topic-id", _metadata)
    for n in range(16):
        stage(lake, n, 0, _readings(0, n * 5_000, 5_000))
        commits.commit()
    before = _keys(lake)
    outcomes = []
    for after_s in (0.5, 1.5, 3.0):
        outcomes.append((_killed(_maintain, lake, after_s), _version(lake)))
        assert _keys(lake) == before
    assert any(code == -signal.SIGKILL for code, _version_after in outcomes), outcomes
    upkeep = maintain(lake, RAW)
    assert upkeep is not None
    assert _keys(lake) == before == [(0, o) for o in range(16 * 5_000)]
    table = delta_table(lake, RAW)
    assert table is not None and len(table.file_uris()) <= 2  # compacted (one day, or two across midnight)
