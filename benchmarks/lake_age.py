"""Does the lake slow down with age? The stream job's lake commit and aggregates batch on a new `raw` and
on one that holds `--days` days of history at the default settings, plus `lake query` times and file sizes.

The history is synthesized (writing a month at a real rate would take a month), shaped as the defaults
leave a lake at that age:
- per past day, the files compaction leaves: `--files-per-day` (7: a day at 200 readings/s is ~430 MB,
  in 64 MB files), each with `--rows-per-file` readings (the scans below read these);
- for the last `lake.log_retention_days` days (`--log-days`; upkeep deletes older log entries), the log
  of 1,440 one-minute commits a day: each a version of its own, that of a small file compaction later
  removed (its `remove` kept as a tombstone for 7 days, as VACUUM leaves it);
- a log checkpoint at the newest version, as the hourly upkeep writes one.

Measured, on a local lake in a temporary directory (no stack needed), each the median of `--repeat`:
1. the lake commit of one minute staged at `--rate` readings/s (`LakeCommits.commit`: read staging,
   enrich, one Delta commit recording the Kafka offsets, clear staging);
2. one batch of the `aggregates` query (Delta streaming source on `raw` from its newest version, as for
   a job that has run all along; the job's one-minute windows and watermark; Spark's `noop` sink) that
   picks that commit up: `triggerExecution` of its progress;
3. `lake query` (DuckDB over the snapshot) for one sensor over one day and over every day.
Also: the size of one commit's file (before compaction) and of a compacted day's files.

    .venv/bin/python benchmarks/lake_age.py [--days 30] [--rate 200] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from sensorpipe.config import Settings, load_settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.storage.lake import RAW, dataset_path, delta_table, write_dataset
from sensorpipe.storage.lake_query import query
from sensorpipe.storage.staging import stage
from sensorpipe.stream.lake_commit import LakeCommits

SENSORS = 100
COMMITS_PER_DAY = 1_440
TOMBSTONE_DAYS = 7
"""Removed files a checkpoint keeps (Delta's deletedFileRetentionDuration): VACUUM forgets older ones."""


def _no_metadata(_settings: Settings) -> list[tuple[str, str | None, str | None, str | None]]:
    return []


def readings(start: datetime, count: int, per_second: float, first_offset: int) -> pa.Table:
    """`count` readings from `start` at `per_second`, round-robin over SENSORS, on Kafka partition 0."""
    step = 1 / per_second
    offsets = range(first_offset, first_offset + count)
    return pa.table(
        {
            "time": pa.array([start + timedelta(seconds=i * step) for i in range(count)], pa.timestamp("us", tz="UTC")),
            "sensor_id": [f"sensor-{i % SENSORS:03d}" for i in range(count)],
            "temperature": [20.0 + (i % 150) / 10 for i in range(count)],
            "humidity": [40.0 + (i % 300) / 10 for i in range(count)],
            "raw_data": ['{"sensor_id":"sensor-000","temperature":21.5,"humidity":44.0}'] * count,
            "time_source": ["payload"] * count,
            "kafka_partition": pa.array([0] * count, pa.int32()),
            "kafka_offset": pa.array(list(offsets), pa.int64()),
        }
    ).select(list(READING_COLUMNS))


def prefill(
    settings: Settings, first_day: datetime, days: int, files_per_day: int, rows_per_file: int, log_days: int
) -> int:
    """The synthesized history (module docstring); the next free Kafka offset."""
    offset = 0
    per_second = rows_per_file * files_per_day / 86_400
    for day in range(days):
        start = first_day + timedelta(days=day)
        for n in range(files_per_day):
            part = readings(start + timedelta(days=n / files_per_day), rows_per_file, per_second, offset)
            write_dataset(settings, RAW, part)
            offset += rows_per_file
    table = delta_table(settings, RAW)
    assert table is not None
    log = Path(dataset_path(settings, RAW)) / "_delta_log"
    version = table.version()
    cutoff = first_day + timedelta(days=days - TOMBSTONE_DAYS)
    for day in range(max(days - log_days, 0), days):
        start = first_day + timedelta(days=day)
        for minute in range(COMMITS_PER_DAY):
            version += 1
            moment = start + timedelta(minutes=minute)
            millis = int(moment.timestamp() * 1000)
            actions: list[dict[str, Any]] = [
                {"commitInfo": {"timestamp": millis, "operation": "WRITE", "operationParameters": {"mode": "Append"}}}
            ]
            if moment >= cutoff:  # a minute's file, compacted since: its tombstone, until VACUUM forgets it
                path = f"date={moment:%Y-%m-%d}/part-{minute:04d}-synthetic.zstd.parquet"
                actions.append(
                    {"remove": {"path": path, "deletionTimestamp": millis, "dataChange": False, "size": 40_000}}
                )
            (log / f"{version:020d}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")
    table = delta_table(settings, RAW)
    assert table is not None
    table.create_checkpoint()
    return offset


def measure(settings: Settings, spark: Any, at: datetime, offset: int, rate: float, repeat: int) -> dict[str, Any]:
    """Lake commit and aggregates batch times for `repeat` one-minute commits from `at`."""
    from sensorpipe.storage.lake import dataset_uri
    from sensorpipe.stream.job import _windows

    commits = LakeCommits(settings, "lake-age-bench", _no_metadata)
    per_minute = int(rate * 60)
    stage(settings, 0, 0, readings(at - timedelta(minutes=1), per_minute, rate, offset))
    commits.commit()  # the table exists and the stream starts after this version
    offset += per_minute
    # The job's aggregates source, started at the newest version: a job that has run all along.
    source = (
        spark.readStream.format("delta")
        .option("skipChangeCommits", "true")
        .option("startingVersion", "latest")
        .load(dataset_uri(settings, RAW))
        .select("sensor_id", "time", "temperature", "humidity")
    )
    windows = _windows(source, settings)
    checkpoint = Path(tempfile.mkdtemp(prefix="lake-age-ckpt-"))
    stream = (
        windows.writeStream.format("noop")
        .outputMode("update")
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="500 milliseconds")
        .start()
    )
    commit_s, batch_s = [], []
    try:
        _wait_batches(stream, 1)
        for n in range(repeat):
            stage(settings, n + 1, 0, readings(at + timedelta(minutes=n), per_minute, rate, offset))
            offset += per_minute
            started = time.perf_counter()
            commits.commit()
            commit_s.append(time.perf_counter() - started)
            progress = _wait_rows(stream, per_minute)
            batch_s.append(progress["durationMs"]["triggerExecution"] / 1000)
    finally:
        stream.stop()
        shutil.rmtree(checkpoint, ignore_errors=True)
    table = delta_table(settings, RAW)
    assert table is not None
    return {
        "versions": table.version() + 1,
        "files": len(table.file_uris()),
        "commit_s": round(statistics.median(commit_s), 3),
        "aggregates_batch_s": round(statistics.median(batch_s), 3),
    }


def _wait_batches(stream: Any, count: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while len(stream.recentProgress) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("the aggregates query ran no batch")
        time.sleep(0.2)


def _wait_rows(stream: Any, rows: int, timeout_s: float = 300) -> dict[str, Any]:
    """The progress of the batch that read `rows` new rows (the commit just made)."""
    seen = len(stream.recentProgress)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for progress in stream.recentProgress[seen:]:
            if progress["numInputRows"] >= rows:
                return dict(progress)
        time.sleep(0.1)
    raise TimeoutError("the aggregates query did not pick the commit up")


def query_times(settings: Settings, day: str, repeat: int) -> dict[str, float]:
    one_day = f"select count(*), avg(temperature) from raw where sensor_id = 'sensor-007' and date = '{day}'"
    every_day = "select count(*), avg(temperature) from raw where sensor_id = 'sensor-007'"
    timings: dict[str, float] = {}
    for name, sql in (("one_sensor_one_day_s", one_day), ("one_sensor_all_days_s", every_day)):
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            query(settings, sql)
            runs.append(time.perf_counter() - started)
        timings[name] = round(statistics.median(runs), 3)
    return timings


def file_sizes(settings: Settings, rate: float) -> dict[str, float]:
    """One commit's file at `rate` (a minute), and how many 64 MB files a compacted day makes of them."""
    commits = LakeCommits(settings, "lake-size-bench", _no_metadata)
    stage(settings, 0, 0, readings(datetime(2026, 1, 1, tzinfo=UTC), int(rate * 60), rate, 0))
    commits.commit()
    sizes = [p.stat().st_size for p in Path(dataset_path(settings, RAW)).glob("date=*/*.parquet")]
    minute_mb = statistics.median(sizes) / 2**20
    day_mb = minute_mb * COMMITS_PER_DAY
    return {
        "commit_file_mb": round(minute_mb, 3),
        "files_per_day_before_compaction": COMMITS_PER_DAY,
        "day_mb": round(day_mb, 1),
        "files_per_day_after_compaction": max(1, -(-int(day_mb) // settings.lake.target_file_mb)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rate", type=float, default=200.0, help="readings/s the commits carry")
    parser.add_argument("--files-per-day", type=int, default=7)
    parser.add_argument("--rows-per-file", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--log-days", type=int, help="days of log kept (default: lake.log_retention_days)")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()

    from sensorpipe.stream.session import build_session

    root = Path(tempfile.mkdtemp(prefix="lake-age-"))
    base = load_settings({"lake": {"backend": "local", "local_dir": root / "base"}})
    spark = build_session(base, "lake-age-bench")
    results: dict[str, Any] = {"rate": options.rate, "days": options.days}
    try:
        first_day = datetime(2026, 11, 1, tzinfo=UTC)
        today = first_day + timedelta(days=options.days)
        new = base.model_copy(update={"lake": base.lake.model_copy(update={"local_dir": root / "new"})})
        results["day_0"] = measure(new, spark, today, 0, options.rate, options.repeat)
        old = base.model_copy(update={"lake": base.lake.model_copy(update={"local_dir": root / "old"})})
        started = time.perf_counter()
        log_days = options.log_days or base.lake.log_retention_days
        results["log_days"] = log_days
        offset = prefill(old, first_day, options.days, options.files_per_day, options.rows_per_file, log_days)
        results["prefill_s"] = round(time.perf_counter() - started, 1)
        results[f"day_{options.days}"] = measure(old, spark, today, offset, options.rate, options.repeat)
        results["query"] = query_times(old, (today - timedelta(days=1)).strftime("%Y-%m-%d"), options.repeat)
        sizes = base.model_copy(update={"lake": base.lake.model_copy(update={"local_dir": root / "sizes"})})
        results["files"] = file_sizes(sizes, options.rate)
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    if options.json:
        print(json.dumps(results))
        return
    for key, value in results.items():
        print(f"{key:<10} {value}")


if __name__ == "__main__":
    main()
