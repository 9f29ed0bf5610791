"""The lake's commits from staging, in a local directory (no JVM, no Kafka: the topic id and the
sensor_metadata reader are given): each staged reading lands once, however often it is staged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from sensorpipe.config import Settings
from sensorpipe.config.settings import LakeSettings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.storage.lake import RAW, delta_table, read_dataset
from sensorpipe.storage.staging import stage, staged_files
from sensorpipe.stream.lake_commit import LakeCommits, highest_offsets

START = datetime(2026, 12, 7, 23, 59, 58, tzinfo=UTC)


def _settings(tmp_path: Path) -> Settings:
    return Settings(lake=LakeSettings(backend="local", local_dir=tmp_path / "lake"))


def _metadata(_settings: Settings) -> list[tuple[str, str | None, str | None, str | None]]:
    return [("s-1", "boiler", "cellar", "thermo")]


def _staged(partition: int, offsets: range, sensor: str = "s-1") -> pa.Table:
    """Readings as the readings writer stages them (READING_COLUMNS), one per offset, a second apart."""
    n = len(offsets)
    return pa.table(
        {
            "time": pa.array([START + timedelta(seconds=o) for o in offsets], pa.timestamp("us", tz="UTC")),
            "sensor_id": [sensor] * n,
            "temperature": [float(o) for o in offsets],
            "humidity": [None] * n,
            "raw_data": ["{}"] * n,
            "time_source": ["payload"] * n,
            "kafka_partition": pa.array([partition] * n, pa.int32()),
            "kafka_offset": pa.array(list(offsets), pa.int64()),
        }
    ).select(list(READING_COLUMNS))


def _keys(settings: Settings) -> list[tuple[int, int]]:
    rows = read_dataset(settings, RAW, columns=["kafka_partition", "kafka_offset"]).to_pylist()
    return sorted((row["kafka_partition"], row["kafka_offset"]) for row in rows)


def test_staged_readings_land_once_with_their_sensor_and_day(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    commits = LakeCommits(settings, "topic-id-1", _metadata)
    stage(settings, 0, 0, _staged(0, range(0, 3)))
    stage(settings, 0, 1, _staged(1, range(0, 2), sensor="s-unknown"))
    stage(settings, 1, 0, _staged(0, range(3, 5)))
    assert commits.commit() == 7
    assert staged_files(settings) == []
    assert _keys(settings) == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1)]
    rows = read_dataset(settings, RAW).to_pylist()
    assert {(r["sensor_id"], r["name"], r["location"]) for r in rows} == {
        ("s-1", "boiler", "cellar"),
        ("s-unknown", None, None),
    }
    assert sorted({r["date"] for r in rows}) == ["2026-12-07", "2026-12-08"]
    table = delta_table(settings, RAW)
    assert table is not None
    assert [table.transaction_version(commits.app_id(p)) for p in (0, 1, 2)] == [4, 1, None]


def test_a_replayed_batch_and_a_reset_checkpoint_add_nothing_twice(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    commits = LakeCommits(settings, "topic-id-1", _metadata)
    stage(settings, 7, 0, _staged(0, range(0, 10)))
    assert commits.commit() == 10
    stage(settings, 7, 0, _staged(0, range(0, 10)))  # the batch again: its commit crashed before cleaning up
    stage(settings, 0, 0, _staged(0, range(0, 12)))  # a reset checkpoint reads Kafka from the start
    assert commits.commit() == 2
    assert _keys(settings) == [(0, o) for o in range(12)]
    assert commits.commit() == 0  # nothing staged: no commit at all
    assert delta_table(settings, RAW).version() == 2  # type: ignore[union-attr]


def test_offsets_staged_by_two_runs_before_a_commit_land_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    stage(settings, 57, 0, _staged(0, range(0, 6)))  # staged, then the job crashed before the lake's commit
    stage(settings, 0, 0, _staged(0, range(0, 8)))  # the run after a checkpoint reset reads them again
    assert LakeCommits(settings, "topic-id-1", _metadata).commit() == 8
    assert _keys(settings) == [(0, o) for o in range(8)]


def test_a_topic_created_again_counts_its_offsets_afresh(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    stage(settings, 0, 0, _staged(0, range(0, 5)))
    assert LakeCommits(settings, "old-topic", _metadata).commit() == 5
    stage(settings, 0, 0, _staged(0, range(0, 3)))  # new records at the same offsets of a new topic
    assert LakeCommits(settings, "new-topic", _metadata).commit() == 3
    assert read_dataset(settings, RAW).num_rows == 8


def test_highest_offsets_per_partition() -> None:
    readings = pa.concat_tables([_staged(0, range(5, 9)), _staged(2, range(0, 1)), _staged(0, range(0, 3))])
    assert highest_offsets(readings) == {0: 8, 2: 0}
