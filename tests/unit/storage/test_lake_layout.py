"""The lake's layout without a network: partition paths, URIs, filters, and its Delta tables in a directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from sensorpipe.config import Settings
from sensorpipe.config.settings import LakeSettings, S3Settings
from sensorpipe.storage.lake import (
    AGG_1M,
    RAW,
    LakeError,
    dataset_path,
    dataset_uri,
    empty_table,
    partition_filter,
    partition_path,
    partition_values,
    read_dataset,
    time_filter,
    with_partition_columns,
)

PLUS_TWO = timezone(timedelta(hours=2))


def test_partition_of_a_utc_time() -> None:
    moment = datetime(2026, 11, 27, 14, 5, 9, tzinfo=UTC)
    assert partition_values(moment) == ("2026-11-27", 14)
    assert partition_path(RAW, moment) == "raw/date=2026-11-27"
    assert partition_path(AGG_1M, moment) == "agg_1m/date=2026-11-27"


def test_partition_comes_from_utc_not_the_local_offset() -> None:
    just_after_local_midnight = datetime(2026, 11, 28, 0, 30, tzinfo=PLUS_TWO)
    assert partition_values(just_after_local_midnight) == ("2026-11-27", 22)
    assert partition_path(RAW, datetime(2026, 12, 31, 23, tzinfo=PLUS_TWO)) == "raw/date=2026-12-31"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        partition_values(datetime(2026, 11, 27, 14))


def test_dataset_uris_and_paths_for_s3_and_local(tmp_path: Path) -> None:
    s3 = Settings(s3=S3Settings(bucket="lakebucket"), lake=LakeSettings(backend="s3"))
    assert dataset_uri(s3, RAW) == "s3a://lakebucket/raw"
    assert dataset_path(s3, AGG_1M) == "lakebucket/agg_1m"
    local = Settings(lake=LakeSettings(backend="local", local_dir=tmp_path / "lake"))
    assert dataset_uri(local, RAW) == f"file://{tmp_path}/lake/raw"
    assert dataset_path(local, AGG_1M) == f"{tmp_path}/lake/agg_1m"


def _hours(first: datetime, count: int) -> pa.Table:
    """One row in the middle of each of `count` hours from `first`, with its partition columns."""
    times = [first + timedelta(hours=i, minutes=30) for i in range(count)]
    return with_partition_columns(pa.table({"time": pa.array(times, pa.timestamp("us", tz="UTC"))}), "time")


def _selected(table: pa.Table, expression: ds.Expression | None) -> list[tuple[str, int]]:
    rows = ds.dataset(table).to_table(filter=expression).to_pylist()
    return [(row["date"], row["hour"]) for row in rows]


def test_partition_filter_selects_the_hours_overlapping_a_window_across_midnight() -> None:
    table = _hours(datetime(2026, 11, 27, 20, tzinfo=UTC), 8)  # 20:00 … 03:00 the next day
    window = partition_filter(datetime(2026, 11, 27, 22, 59, tzinfo=UTC), datetime(2026, 11, 28, 1, 0, 1, tzinfo=UTC))
    assert _selected(table, window) == [("2026-11-27", 22), ("2026-11-27", 23), ("2026-11-28", 0), ("2026-11-28", 1)]


def test_partition_filter_end_is_exclusive_on_the_hour() -> None:
    table = _hours(datetime(2026, 11, 27, 20, tzinfo=UTC), 8)
    window = partition_filter(end=datetime(2026, 11, 27, 22, tzinfo=UTC))
    assert _selected(table, window) == [("2026-11-27", 20), ("2026-11-27", 21)]
    local_start = partition_filter(start=datetime(2026, 11, 28, 2, 0, tzinfo=PLUS_TWO))  # midnight UTC
    assert _selected(table, local_start) == [("2026-11-28", 0), ("2026-11-28", 1), ("2026-11-28", 2), ("2026-11-28", 3)]
    assert partition_filter() is None


def test_time_filter_is_exact_for_columns_with_and_without_a_zone() -> None:
    start, end = datetime(2026, 11, 27, 10, tzinfo=UTC), datetime(2026, 11, 27, 11, tzinfo=UTC)
    times = [start - timedelta(microseconds=1), start, end - timedelta(microseconds=1), end]
    for column_type in (pa.timestamp("us", tz="UTC"), pa.timestamp("ns"), pa.timestamp("us", tz="Europe/Berlin")):
        naive = column_type.tz is None
        values = [t.replace(tzinfo=None) if naive else t for t in times]
        table = pa.table({"time": pa.array(values, pa.timestamp("us", tz=None if naive else "UTC")).cast(column_type)})
        kept = ds.dataset(table).to_table(filter=time_filter("time", start, end)).column("time").to_pylist()
        assert kept == values[1:3], column_type


def test_with_partition_columns_derives_utc_date_and_hour_and_sorts() -> None:
    berlin = pa.array(
        [datetime(2026, 11, 28, 0, 30, tzinfo=PLUS_TWO), datetime(2026, 11, 27, 9, tzinfo=UTC)],
        pa.timestamp("us", tz="UTC"),
    ).cast(pa.timestamp("us", tz="Europe/Berlin"))
    table = pa.table({"bucket": berlin, "date": ["stale", "stale"], "n": [1, 2]})
    out = with_partition_columns(table, "bucket")
    assert out.column_names == ["bucket", "n", "date", "hour"]
    assert out.select(["n", "date", "hour"]).to_pylist() == [
        {"n": 2, "date": "2026-11-27", "hour": 9},
        {"n": 1, "date": "2026-11-27", "hour": 22},
    ]


def test_with_partition_columns_refuses_rows_without_a_time() -> None:
    with pytest.raises(LakeError, match="timestamp column 'time'"):
        with_partition_columns(pa.table({"time": ["2026-11-27"]}), "time")
    with pytest.raises(LakeError, match="1 row"):
        with_partition_columns(pa.table({"time": pa.array([None], pa.timestamp("us", tz="UTC"))}), "time")


def test_empty_table_says_what_it_is() -> None:
    assert empty_table(RAW).schema == pa.schema(
        [("time", pa.timestamp("us", tz="UTC")), ("date", pa.string()), ("hour", pa.int32())]
    )
    only = empty_table(AGG_1M, ["sensor_id", "bucket"])
    assert only.num_rows == 0
    assert only.schema == pa.schema([("sensor_id", pa.null()), ("bucket", pa.timestamp("us", tz="UTC"))])


def test_an_unknown_dataset_is_named_before_any_io(tmp_path: Path) -> None:
    local = Settings(lake=LakeSettings(backend="local", local_dir=tmp_path))
    with pytest.raises(LakeError, match="unknown dataset 'dlq': the lake holds raw, agg_1m"):
        read_dataset(local, "dlq")  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())
