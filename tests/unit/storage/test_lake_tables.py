"""The lake's Delta tables in a local directory (delta-rs, DuckDB; no JVM, no network): what readers see,
what upkeep does, and what `lake query` answers."""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import Transaction

from sensorpipe.config import Settings
from sensorpipe.config.settings import LakeSettings
from sensorpipe.storage.lake import (
    AGG_1M,
    RAW,
    SCHEMAS,
    append,
    delta_table,
    read_dataset,
    with_partition_columns,
    write_dataset,
)
from sensorpipe.storage.lake_query import QueryError, query
from sensorpipe.storage.lake_upkeep import LOCK, LOCK_STALE_S, UpkeepBusy, maintain, maintain_all, retention_cutoff

UTC_MICROS = pa.timestamp("us", tz="UTC")
DAY = datetime(2026, 12, 1, tzinfo=UTC)


def _settings(tmp_path: Path, **lake: object) -> Settings:
    return Settings(lake=LakeSettings(backend="local", local_dir=tmp_path / "lake", **lake))


def _readings(start: datetime, n: int, *, sensor: str = "s-1", step: timedelta = timedelta(minutes=1)) -> pa.Table:
    times = [start + i * step for i in range(n)]
    return pa.table(
        {
            "time": pa.array(times, UTC_MICROS),
            "sensor_id": [sensor] * n,
            "temperature": [20.0 + i for i in range(n)],
            "kafka_partition": pa.array([0] * n, pa.int32()),
            "kafka_offset": pa.array(range(n), pa.int64()),
        }
    )


def _files(settings: Settings, dataset: str) -> list[Path]:
    """The data files on disk (the log's checkpoints left out)."""
    return sorted((settings.lake_dir / dataset).glob("date=*/*.parquet"))


def test_a_table_holds_what_its_commits_list_partitioned_by_day(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert delta_table(settings, RAW) is None
    assert read_dataset(settings, RAW).num_rows == 0
    write_dataset(settings, RAW, _readings(DAY - timedelta(hours=1), 3, step=timedelta(hours=1)))
    # A file no commit lists (a crashed write) is never read.
    day_dir = settings.lake_dir / RAW / "date=2026-12-01"
    pq.write_table(with_partition_columns(_readings(DAY, 5), "time"), day_dir / "part-orphan.parquet")
    rows = read_dataset(settings, RAW)
    assert rows.num_rows == 3
    assert sorted(p.parent.name for p in _files(settings, RAW) if "orphan" not in p.name) == [
        "date=2026-11-30",
        "date=2026-12-01",
    ]
    assert rows.schema.names == SCHEMAS[RAW].names
    assert rows.schema.field("time").type == UTC_MICROS
    assert sorted(rows["hour"].to_pylist()) == [0, 1, 23]


def test_reads_keep_to_the_window_and_the_columns_asked(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    write_dataset(settings, RAW, _readings(DAY - timedelta(minutes=2), 5))
    window = read_dataset(settings, RAW, start=DAY - timedelta(minutes=1), end=DAY + timedelta(minutes=2))
    assert window.sort_by("time")["time"].to_pylist() == [DAY - timedelta(minutes=1), DAY, DAY + timedelta(minutes=1)]
    assert read_dataset(settings, RAW, start=DAY, columns=["sensor_id"]).schema.names == ["sensor_id"]


def test_a_commit_records_its_transactions_with_its_rows(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    append(settings, RAW, with_partition_columns(_readings(DAY, 2), "time"), [Transaction("app:0", 41)])
    table = delta_table(settings, RAW)
    assert table is not None
    assert (table.transaction_version("app:0"), table.transaction_version("app:1")) == (41, None)
    assert read_dataset(settings, RAW).num_rows == 2


def test_upkeep_compacts_small_files_and_keeps_every_row(tmp_path: Path) -> None:
    settings = _settings(tmp_path, vacuum_retention_hours=0)
    for hour in range(4):
        write_dataset(settings, RAW, _readings(DAY + timedelta(hours=hour), 10))
    before = read_dataset(settings, RAW).sort_by("time")
    upkeep = maintain(settings, RAW)
    assert upkeep is not None
    assert (upkeep.files_compacted, upkeep.files_written, upkeep.files_vacuumed) == (4, 1, 4)
    assert len(_files(settings, RAW)) == 1
    assert read_dataset(settings, RAW).sort_by("time").equals(before)
    assert (settings.lake_dir / RAW / "_delta_log" / f"{upkeep.version:020d}.checkpoint.parquet").is_file()


def test_retention_deletes_exactly_the_days_older_than_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path, retention_days=2)
    now = DAY + timedelta(days=3, hours=12)
    assert retention_cutoff(settings, now) == "2026-12-02"
    assert retention_cutoff(_settings(tmp_path), now) is None
    write_dataset(settings, RAW, _readings(DAY, 4, step=timedelta(days=1)))  # Dec 1, 2, 3, 4
    upkeep = maintain(settings, RAW, now)
    assert upkeep is not None and upkeep.rows_deleted == 1
    assert sorted(read_dataset(settings, RAW)["date"].to_pylist()) == ["2026-12-02", "2026-12-03", "2026-12-04"]
    assert maintain(settings, AGG_1M, now) is None  # no table: nothing to keep up


def test_lake_query_answers_sql_over_both_tables(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    write_dataset(settings, RAW, _readings(DAY, 3))
    write_dataset(settings, RAW, _readings(DAY, 2, sensor="s-2"))
    answer = query(settings, "select sensor_id, count(*) as n, max(temperature) as top from raw group by 1 order by 1")
    assert answer.to_pylist() == [{"sensor_id": "s-1", "n": 3, "top": 22.0}, {"sensor_id": "s-2", "n": 2, "top": 21.0}]
    assert query(settings, "select count(*) as n from agg_1m where date = '2026-12-01'").to_pylist() == [{"n": 0}]
    with pytest.raises(QueryError, match=r"(?s)nope.*the lake.s tables: raw, agg_1m"):
        query(settings, "select nope from raw")


def test_a_table_keeps_its_log_as_long_as_the_settings_say(tmp_path: Path) -> None:
    write_dataset(_settings(tmp_path), RAW, _readings(DAY, 1))
    table = delta_table(_settings(tmp_path), RAW)
    assert table is not None
    assert table.metadata().configuration["delta.logRetentionDuration"] == "interval 2 days"
    maintain(_settings(tmp_path, log_retention_days=5), RAW)  # changed since: upkeep sets it again
    table = delta_table(_settings(tmp_path), RAW)
    assert table is not None
    assert table.metadata().configuration["delta.logRetentionDuration"] == "interval 5 days"


def _maintain_all(settings: Settings, go: Any) -> None:
    go.wait()
    maintain_all(settings)


def test_upkeeps_started_together_take_turns_and_leave_every_row_once(tmp_path: Path) -> None:
    """delta-rs lets concurrent compactions of the same files all commit: without the lock, three left
    every row three times."""
    settings = _settings(tmp_path)
    for minute in range(12):
        write_dataset(settings, RAW, _readings(DAY + timedelta(minutes=10 * minute), 10, sensor=f"s-{minute}"))
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    upkeeps = [context.Process(target=_maintain_all, args=(settings, go)) for _ in range(3)]
    for process in upkeeps:
        process.start()
    go.set()
    for process in upkeeps:
        process.join(120)
    assert [p.exitcode for p in upkeeps] == [0, 0, 0]
    assert read_dataset(settings, RAW).num_rows == 120
    table = delta_table(settings, RAW)
    assert table is not None and len(table.file_uris()) == 1
    assert not (settings.lake_dir / LOCK).exists()


def test_a_lock_left_by_a_killed_upkeep_is_taken_over_once_stale(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    lock = settings.lake_dir / LOCK
    lock.parent.mkdir(parents=True)
    lock.write_text('{"pid": 1}')
    with pytest.raises(UpkeepBusy, match="another upkeep of the lake holds _locks/upkeep"):
        maintain_all(settings, wait_s=0)
    stale = time.time() - LOCK_STALE_S - 1
    os.utime(lock, (stale, stale))
    assert maintain_all(settings, wait_s=5) == []  # no table yet: nothing else to do
    assert not lock.exists()
