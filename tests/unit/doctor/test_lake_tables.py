"""Doctor's checks of the lake's Delta tables, on a local lake: readable, kept up, and VACUUM not cutting
under the aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from sensorpipe.config import Settings
from sensorpipe.config.settings import LakeSettings
from sensorpipe.doctor.lake import MAX_FILES_PER_PAST_DAY, check_table
from sensorpipe.storage.lake import AGG_1M, RAW, write_dataset
from sensorpipe.storage.lake_upkeep import maintain

DAY = datetime(2026, 11, 2, tzinfo=UTC)


def _settings(tmp_path: Path, **lake: object) -> Settings:
    return Settings(lake=LakeSettings(backend="local", local_dir=tmp_path / "lake", **lake))


def _reading(moment: datetime) -> pa.Table:
    return pa.table({"time": pa.array([moment], pa.timestamp("us", tz="UTC")), "sensor_id": ["s-1"]})


def test_no_table_yet_is_fine(tmp_path: Path) -> None:
    check = check_table(AGG_1M, _settings(tmp_path))
    assert check.ok and check.detail == "none yet: the stream job creates it"


def test_a_finished_day_of_small_files_means_compaction_is_not_running(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for i in range(MAX_FILES_PER_PAST_DAY + 1):
        write_dataset(settings, RAW, _reading(DAY + timedelta(minutes=i)))
    check = check_table(RAW, settings)
    assert not check.ok
    assert "51 file(s) in 1 day(s), median 51 per day, 100 % small" in check.detail
    assert "2026-11-02: 51): compaction is not running" in check.detail
    assert check.fix is not None and check.fix.startswith("`sensorpipe lake maintain`")
    maintain(settings, RAW)
    kept_up = check_table(RAW, settings)
    assert kept_up.ok and "1 file(s) in 1 day(s)" in kept_up.detail
    assert kept_up.detail.endswith(f"log checkpoint at version {kept_up.detail.split()[1].rstrip(',')}")


def test_a_vacuum_retention_shorter_than_a_day_is_refused(tmp_path: Path) -> None:
    check = check_table(RAW, _settings(tmp_path, vacuum_retention_hours=2))
    assert not check.ok
    assert "lake.vacuum_retention_hours is 2" in check.detail
    assert check.fix == "set lake.vacuum_retention_hours to 24 or more (default 168)"
