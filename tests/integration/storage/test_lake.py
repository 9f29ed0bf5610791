"""The lake's Delta tables written and read back through delta-rs, and a file-sink lake migrated: on the
session stack's SeaweedFS S3 and on a local directory.

Each test gets a lake of its own (a fresh bucket, or a fresh directory), so no test sees another's files.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from pydantic import SecretStr

from sensorpipe.clients.topics import create_topics
from sensorpipe.config import Settings
from sensorpipe.config.settings import LakeSettings
from sensorpipe.storage.lake import (
    AGG_1M,
    RAW,
    dataset_path,
    dataset_uri,
    delta_table,
    lake_filesystem,
    partition_path,
    read_dataset,
    with_partition_columns,
    write_dataset,
    write_partitioned,
)
from sensorpipe.storage.s3 import S3Error, ensure_bucket, s3_client
from sensorpipe.stream.lake_migrate import file_sink_datasets, migrate_lake

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
SENSORS = 3


def _readings(first: datetime, count: int, step: timedelta = timedelta(minutes=7)) -> pa.Table:
    """`count` readings, one every `step` from `first`, round-robin over SENSORS, with Kafka coordinates."""
    return pa.table(
        {
            "time": pa.array([first + i * step for i in range(count)], pa.timestamp("us", tz="UTC")),
            "sensor_id": [f"sensor-{i % SENSORS}" for i in range(count)],
            "temperature": [20.0 + i / 4 for i in range(count)],
            "kafka_partition": pa.array([i % 3 for i in range(count)], pa.int32()),
            "kafka_offset": pa.array(range(count), pa.int64()),
        }
    )


def _rows(table: pa.Table, *columns: str) -> list[tuple[object, ...]]:
    """The table's rows as sorted tuples of `columns`: reading order is not part of the contract."""
    return sorted(tuple(row[c] for c in columns) for row in table.to_pylist())


def _with_bucket(settings: Settings, bucket: str) -> Settings:
    return settings.model_copy(update={"s3": settings.s3.model_copy(update={"bucket": bucket})})


def _drop_bucket(settings: Settings) -> None:
    client = s3_client(settings.s3)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3.bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=settings.s3.bucket, Key=item["Key"])
    client.delete_bucket(Bucket=settings.s3.bucket)


@pytest.fixture
def s3_lake(stack_settings: Settings) -> Iterator[Settings]:
    """The session stack's S3 server, in a bucket of this test's own."""
    settings = _with_bucket(stack_settings, f"lake-test-{uuid.uuid4().hex[:12]}")
    assert ensure_bucket(settings.s3)
    try:
        yield settings
    finally:
        _drop_bucket(settings)


@pytest.fixture(params=["s3", "local"])
def lake(request: pytest.FixtureRequest, tmp_path: Path, stack_settings: Settings) -> Settings:
    if request.param == "s3":
        settings: Settings = request.getfixturevalue("s3_lake")
        return settings
    return stack_settings.model_copy(update={"lake": LakeSettings(backend="local", local_dir=tmp_path / "lake")})


def _data_files(lake: Settings, dataset: str) -> list[str]:
    """Every file of `dataset` but its log, relative to it."""
    filesystem, root = lake_filesystem(lake), dataset_path(lake, dataset)
    infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    files = [i.path.removeprefix(root + "/") for i in infos if i.type == pafs.FileType.File]
    return sorted(f for f in files if not f.startswith("_delta_log/"))


def test_written_readings_read_back_from_a_table_partitioned_by_day(lake: Settings) -> None:
    table = _readings(START, 60)  # 21:00 on the 27th to 03:53 on the 28th, UTC
    assert write_dataset(lake, RAW, table) == 0  # the table's first version

    files = _data_files(lake, RAW)
    assert {f.rsplit("/", 1)[0] for f in files} == {"date=2026-11-27", "date=2026-11-28"}
    assert partition_path(RAW, START) == "raw/date=2026-11-27"
    back = read_dataset(lake, RAW)
    assert back.num_rows == 60
    columns = ("time", "sensor_id", "temperature", "kafka_partition", "kafka_offset")
    assert _rows(back, *columns) == _rows(table, *columns)
    for row in back.to_pylist():
        assert (row["date"], row["hour"]) == (row["time"].strftime("%Y-%m-%d"), row["time"].hour)


def test_a_second_write_is_a_second_commit_and_stray_files_are_never_read(lake: Settings) -> None:
    write_dataset(lake, RAW, _readings(START, 5))
    assert write_dataset(lake, RAW, _readings(START, 5)) == 1
    # What a crashed writer leaves: a part file in the table's directory that no commit lists.
    stray = with_partition_columns(_readings(START, 7), "time")
    write_partitioned(lake, stray, dataset_path(lake, RAW))
    assert read_dataset(lake, RAW).num_rows == 10
    table = delta_table(lake, RAW)
    assert table is not None and table.version() == 1


def test_a_time_window_selects_exactly_its_rows(lake: Settings) -> None:
    table = _readings(START, 60)
    write_dataset(lake, RAW, table)
    start, end = datetime(2026, 11, 27, 23, 35, tzinfo=UTC), datetime(2026, 11, 28, 1, 0, tzinfo=UTC)

    window = read_dataset(lake, RAW, start=start, end=end, columns=["kafka_offset", "hour"])
    expected = [offset for offset, t in enumerate(table.column("time").to_pylist()) if start <= t < end]
    assert len(expected) == 12  # 23:41 … 00:58
    assert window.column_names == ["kafka_offset", "hour"]
    assert sorted(window.column("kafka_offset").to_pylist()) == expected
    assert set(window.column("hour").to_pylist()) == {23, 0}

    after = read_dataset(lake, RAW, start=datetime(2026, 11, 28, 3, 0, tzinfo=UTC))
    assert sorted(after.column("kafka_offset").to_pylist()) == list(range(52, 60))


def test_aggregates_are_partitioned_by_their_bucket(lake: Settings) -> None:
    minutes = pa.table(
        {
            "bucket": pa.array([START + timedelta(minutes=i) for i in range(0, 180, 20)], pa.timestamp("us", tz="UTC")),
            "sensor_id": ["sensor-0"] * 9,
            "avg_temperature": [21.5] * 9,
            "count": pa.array([60] * 9, pa.int64()),
        }
    )
    write_dataset(lake, AGG_1M, minutes)
    assert {f.rsplit("/", 1)[0] for f in _data_files(lake, AGG_1M)} == {"date=2026-11-27"}
    hour = read_dataset(lake, AGG_1M, start=START + timedelta(hours=1), end=START + timedelta(hours=2))
    assert _rows(hour, "bucket", "hour") == [(START + timedelta(minutes=m), 22) for m in (60, 80, 100)]
    assert read_dataset(lake, RAW).num_rows == 0


def _write_sink_log(lake: Settings, batches: dict[str, list[tuple[str, str]]]) -> None:
    """Spark's `_spark_metadata` log as its file sink writes it: per batch, `v1` then one JSON line per file."""
    filesystem = lake_filesystem(lake)
    uri, root = dataset_uri(lake, RAW), dataset_path(lake, RAW)
    # Spark creates the directory first (on S3 an empty `raw/_spark_metadata/` marker object).
    filesystem.create_dir(f"{root}/_spark_metadata")
    for name, entries in batches.items():
        lines = ["v1"]
        for relative, action in entries:
            # Spark logs Hadoop URIs: `s3a://bucket/raw/…`, or `file:/abs/…` with a single slash.
            path = f"{uri}/{relative}".replace("file:///", "file:/")
            lines.append(json.dumps({"path": path, "size": 1, "isDir": False, "modificationTime": 0, "action": action}))
        with filesystem.open_output_stream(f"{root}/_spark_metadata/{name}") as out:
            out.write("\n".join(lines).encode())


def _file_sink_lake(lake: Settings) -> tuple[pa.Table, pa.Table]:
    """A lake as sensorpipe wrote it before Delta: hour directories, and a sink log that lists some files.

    Returns the readings its log commits, and those of a crashed batch it does not (orphans).
    """
    root = dataset_path(lake, RAW)
    committed, orphans = _readings(START, 10), _readings(START + timedelta(hours=5), 4)
    first = write_partitioned(lake, with_partition_columns(committed.slice(0, 6), "time"), root)
    later = write_partitioned(lake, with_partition_columns(committed.slice(6), "time"), root)
    replaced = write_partitioned(lake, with_partition_columns(_readings(START, 2), "time"), root)
    write_partitioned(lake, with_partition_columns(orphans, "time"), root)
    write_partitioned(lake, with_partition_columns(committed.slice(0, 3), "time"), dataset_path(lake, AGG_1M))
    lake_filesystem(lake).create_dir(f"{dataset_path(lake, AGG_1M)}/_spark_metadata")
    _write_sink_log(
        lake,
        {
            "0": [(f, "add") for f in first + replaced],
            "1": [(f, "add") for f in later] + [(f, "delete") for f in replaced],
        },
    )
    return committed, orphans


def test_a_file_sink_lake_becomes_delta_with_exactly_its_committed_readings(lake: Settings) -> None:
    create_topics(lake.kafka)
    committed, _orphans = _file_sink_lake(lake)
    assert file_sink_datasets(lake) == [RAW, AGG_1M]
    migrated = migrate_lake(lake)
    assert migrated is not None and (migrated.readings, migrated.files_read) == (10, 3)  # 21:00-21:35, then 2 hours
    columns = ("time", "sensor_id", "kafka_partition", "kafka_offset")
    assert _rows(read_dataset(lake, RAW), *columns) == _rows(committed, *columns)
    assert [f for f in _data_files(lake, RAW) if "/hour=" in f or f.startswith("_spark_metadata")] == []
    assert _data_files(lake, AGG_1M) == []  # its old files: the aggregates compute agg_1m again from raw
    assert migrate_lake(lake) is None

    # Cut short between the Delta commit and the clean-up: the next run adds nothing twice.
    _file_sink_lake(lake)
    again = migrate_lake(lake)
    assert again is not None and again.readings == 0
    assert read_dataset(lake, RAW).num_rows == 10


def test_a_missing_dataset_reads_as_an_empty_table(lake: Settings) -> None:
    empty = read_dataset(lake, AGG_1M, start=START)
    assert empty.num_rows == 0
    assert empty.column_names == ["bucket", "date", "hour"]
    assert read_dataset(lake, RAW, columns=["sensor_id", "time"]).column_names == ["sensor_id", "time"]


def test_wrong_keys_say_which_setting_to_fix(s3_lake: Settings) -> None:
    wrong = s3_lake.model_copy(update={"s3": s3_lake.s3.model_copy(update={"secret_key": SecretStr("not-the-secret")})})
    with pytest.raises(S3Error, match=r"refused the keys of access key 'sensorpipe'.*s3\.secret_key"):
        read_dataset(wrong, RAW)
    with pytest.raises(S3Error, match="refused the keys"):
        write_dataset(wrong, RAW, _readings(START, 1))


def test_a_missing_bucket_is_an_error_not_an_empty_lake(s3_lake: Settings) -> None:
    with pytest.raises(S3Error, match=r"has no bucket 'no-such-bucket-.*': run `sensorpipe stack up`"):
        read_dataset(_with_bucket(s3_lake, f"no-such-bucket-{uuid.uuid4().hex[:8]}"), RAW)


def test_an_unreachable_endpoint_says_to_start_the_stack(s3_lake: Settings) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = s3_lake.model_copy(update={"s3": s3_lake.s3.model_copy(update={"endpoint": f"http://127.0.0.1:{port}"})})
    with pytest.raises(S3Error, match="refused the connection: is `sensorpipe stack up` running"):
        read_dataset(nowhere, RAW)
