"""The lake written and read back with pyarrow: on the session stack's SeaweedFS S3 and on a local directory.

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
import pytest
from pydantic import SecretStr

from sensorpipe.config import Settings
from sensorpipe.config.settings import LakeSettings
from sensorpipe.storage.lake import (
    AGG_1M,
    RAW,
    dataset_path,
    dataset_uri,
    lake_filesystem,
    partition_path,
    read_dataset,
    write_dataset,
)
from sensorpipe.storage.s3 import S3Error, ensure_bucket, s3_client

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
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "s3":
        settings: Settings = request.getfixturevalue("s3_lake")
        return settings
    return Settings(lake=LakeSettings(backend="local", local_dir=tmp_path / "lake"))


def test_written_readings_read_back_in_hive_partitions(lake: Settings) -> None:
    table = _readings(START, 60)  # 21:00 on the 27th to 03:53 on the 28th, UTC
    files = write_dataset(lake, RAW, table)

    assert files, "nothing written"
    expected_dirs = {partition_path(RAW, t).removeprefix("raw/") for t in table.column("time").to_pylist()}
    assert {f.rsplit("/", 1)[0] for f in files} == expected_dirs
    assert "date=2026-11-28/hour=0" in expected_dirs
    back = read_dataset(lake, RAW)
    assert back.num_rows == 60
    columns = ("time", "sensor_id", "temperature", "kafka_partition", "kafka_offset")
    assert _rows(back, *columns) == _rows(table, *columns)
    for row in back.to_pylist():
        assert (row["date"], row["hour"]) == (row["time"].strftime("%Y-%m-%d"), row["time"].hour)


def test_a_second_write_adds_files_instead_of_replacing_them(lake: Settings) -> None:
    first, second = _readings(START, 5), _readings(START, 5)
    assert set(write_dataset(lake, RAW, first)).isdisjoint(write_dataset(lake, RAW, second))
    assert read_dataset(lake, RAW).num_rows == 10


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
    files = write_dataset(lake, AGG_1M, minutes)
    assert {f.split("/hour=")[0] for f in files} == {"date=2026-11-27"}
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


def test_with_a_sink_log_only_the_committed_files_are_read(lake: Settings) -> None:
    committed = write_dataset(lake, RAW, _readings(START, 10))
    write_dataset(lake, RAW, _readings(START, 10))  # a crashed batch's orphan files: same rows, never committed
    later = write_dataset(lake, RAW, _readings(START + timedelta(hours=5), 4))
    replaced = write_dataset(lake, RAW, _readings(START + timedelta(hours=9), 3))
    assert read_dataset(lake, RAW).num_rows == 27, "without a log every file is read"

    _write_sink_log(
        lake,
        {
            "0": [(f, "add") for f in committed + replaced],
            "1": [(f, "add") for f in later] + [(f, "delete") for f in replaced],
        },
    )
    back = read_dataset(lake, RAW)
    assert sorted(back.column("time").to_pylist()) == sorted(
        _readings(START, 10).column("time").to_pylist()
        + _readings(START + timedelta(hours=5), 4).column("time").to_pylist()
    )
    assert read_dataset(lake, RAW, end=START + timedelta(hours=1)).num_rows == 9  # 21:00 … 21:56, once each


def test_an_empty_sink_log_means_nothing_committed(lake: Settings) -> None:
    write_dataset(lake, RAW, _readings(START, 3))  # the part files of batch 0, which never committed
    _write_sink_log(lake, {})
    assert read_dataset(lake, RAW).num_rows == 0


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
