"""The Parquet lake: its layout in one place, and reading it back exactly as Spark committed it.

Layout (docs/design.md "Storage layout"): one directory per dataset under the lake root (`s3a://<bucket>/`
or `Settings.lake_dir`), Hive-style partitions by UTC date and hour:
`raw/date=2026-11-27/hour=14/part-….parquet`. The stream job takes dataset URIs and partition
columns from here; backfill and tests read the lake back with pyarrow through `read_dataset`.

Spark's file sink commits the files of each micro-batch in `<dataset>/_spark_metadata/`; a batch
that crashed may leave part files that no log lists. `read_dataset` reads only the files the log
lists when there is one, so such orphans are never read (docs/design.md "Delivery guarantee").
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, get_args
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from botocore.exceptions import BotoCoreError, ClientError

from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.s3 import S3Error, explain, s3_client

__all__ = [
    "AGG_1M",
    "DATASETS",
    "DATE_COLUMN",
    "HOUR_COLUMN",
    "PARTITION_SCHEMA",
    "RAW",
    "SPARK_METADATA_DIR",
    "TIME_COLUMNS",
    "Dataset",
    "LakeError",
    "committed_files",
    "dataset_path",
    "dataset_uri",
    "empty_table",
    "lake_filesystem",
    "partition_filter",
    "partition_path",
    "partition_values",
    "read_dataset",
    "time_filter",
    "with_partition_columns",
    "write_dataset",
]

logger = logging.getLogger(__name__)

Dataset = Literal["raw", "agg_1m"]
RAW: Final = "raw"
"""Valid readings with their Kafka partition and offset."""
AGG_1M: Final = "agg_1m"
"""One-minute aggregates per sensor."""
DATASETS: Final[tuple[Dataset, ...]] = get_args(Dataset)
TIME_COLUMNS: Final[dict[Dataset, str]] = {RAW: "time", AGG_1M: "bucket"}
"""The timestamp column each dataset is partitioned by."""

DATE_COLUMN: Final = "date"
HOUR_COLUMN: Final = "hour"
PARTITION_SCHEMA: Final = pa.schema([(DATE_COLUMN, pa.string()), (HOUR_COLUMN, pa.int32())])
"""`date` as `YYYY-MM-DD` and `hour` 0 to 23, both in UTC: what Spark's `partitionBy` writes and pyarrow reads."""

SPARK_METADATA_DIR: Final = "_spark_metadata"
_SINK_LOG_VERSION = "v1"
_SINK_LOG_FILE = re.compile(r"(\d+)(\.compact)?")
_UTC_MICROS = pa.timestamp("us", tz="UTC")
_TICK = timedelta(microseconds=1)


class LakeError(SensorpipeError):
    """The lake holds something this layout cannot read, or was asked for something it does not hold."""


def _utc(moment: datetime) -> datetime:
    """Naive datetimes are refused: which hour they fall in would depend on the machine's time zone."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone: pass an aware datetime (e.g. tzinfo=UTC)")
    return moment.astimezone(UTC)


def partition_values(moment: datetime) -> tuple[str, int]:
    """(`date`, `hour`) of the partition holding `moment`, from its UTC time."""
    utc = _utc(moment)
    return utc.strftime("%Y-%m-%d"), utc.hour


def partition_path(dataset: Dataset, moment: datetime) -> str:
    """Path of the partition holding `moment`, relative to the lake root: `raw/date=2026-11-27/hour=14`."""
    date, hour = partition_values(moment)
    return f"{dataset}/{DATE_COLUMN}={date}/{HOUR_COLUMN}={hour}"


def dataset_uri(settings: Settings, dataset: Dataset) -> str:
    """Where Spark writes and reads `dataset`: `s3a://bucket/raw` or `file:///abs/lake/raw`."""
    return f"{settings.lake_uri.rstrip('/')}/{dataset}"


def dataset_path(settings: Settings, dataset: str) -> str:
    """Where `dataset` (or any directory of the lake) lives inside `lake_filesystem(settings)`: `bucket/raw`."""
    if settings.lake.backend == "local":
        return str(settings.lake_dir / dataset)
    return f"{settings.s3.bucket}/{dataset}"


def lake_filesystem(settings: Settings) -> pafs.FileSystem:
    """The configured lake as a pyarrow filesystem, with the endpoint, keys and region of the `[s3]` section."""
    if settings.lake.backend == "local":
        return pafs.LocalFileSystem()
    s3 = settings.s3
    endpoint = urlsplit(s3.endpoint)
    return pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key.get_secret_value(),
        region=s3.region,
        scheme=endpoint.scheme,
        endpoint_override=endpoint.netloc,
        # Path-style, as S3A and boto3 use it: the bucket never has to resolve as a host name.
        force_virtual_addressing=False,
    )


@contextmanager
def explained(settings: Settings) -> Iterator[None]:
    """pyarrow reports S3 failures as bare OSErrors; ask boto3 what is wrong so the message names the fix."""
    try:
        yield
    except OSError as e:
        if settings.lake.backend == "local":
            raise
        s3 = settings.s3
        try:
            s3_client(s3, timeout_s=3.0, retries=1).list_objects_v2(Bucket=s3.bucket, MaxKeys=1)
        except (ClientError, BotoCoreError) as probe_error:
            raise explain(s3, probe_error) from e
        raise S3Error(f"S3 at {s3.endpoint} failed: {e}") from e


def _sink_log_entries(text: str, name: str) -> list[dict[str, object]]:
    """One batch file of Spark's file sink log: a version line, then one JSON object per line."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != _SINK_LOG_VERSION:
        found = lines[0].strip() if lines else "nothing"
        raise LakeError(f"{name}: expected the file sink log version {_SINK_LOG_VERSION!r} first, found {found!r}")
    return [json.loads(line) for line in lines[1:] if line.strip()]


def _uri_to_path(uri: str, filesystem: pafs.FileSystem) -> str:
    """A path from the log (`s3a://bucket/raw/…`, `file:/abs/…`, percent-encoded) as `filesystem` names it."""
    parts = urlsplit(uri)
    if filesystem.type_name == "s3" and parts.scheme in {"s3a", "s3", "s3n"}:
        return unquote(f"{parts.netloc}{parts.path}")
    if filesystem.type_name == "local" and parts.scheme == "file":
        return unquote(parts.path)
    raise LakeError(f"the file sink log lists {uri}, which is not on this lake's {filesystem.type_name} filesystem")


def committed_files(filesystem: pafs.FileSystem, dataset_dir: str) -> list[str] | None:
    """The part files Spark's file sink committed under `dataset_dir`, or None when it has no sink log.

    Mirrors Spark's `CompactibleFileStreamLog.allFiles`: the newest `N.compact` file holds every
    earlier batch, then each later batch file `N+1`, `N+2`, … up to the newest must exist. A path is
    live when some batch adds it and no batch deletes it. Hidden files (`.0.crc`, `.1.tmp`) are skipped.
    An empty log means no batch committed yet: no files, even if part files lie around.
    """
    log_dir = f"{dataset_dir}/{SPARK_METADATA_DIR}"
    if filesystem.get_file_info(log_dir).type != pafs.FileType.Directory:
        return None
    batches: dict[int, str] = {}
    for info in filesystem.get_file_info(pafs.FileSelector(log_dir)):
        match = _SINK_LOG_FILE.fullmatch(info.base_name)
        if info.type == pafs.FileType.File and match:
            batch = int(match.group(1))
            if match.group(2) or batch not in batches:
                batches[batch] = info.path
    if not batches:
        return []
    latest = max(batches)
    compacted = [batch for batch, path in batches.items() if path.endswith(".compact")]
    first = max(compacted, default=0)
    missing = [batch for batch in range(first, latest + 1) if batch not in batches]
    if missing:
        raise LakeError(f"{log_dir} lacks batch {missing[0]} of {first}..{latest}: the file sink log is damaged")
    added: dict[str, None] = {}
    deleted: set[str] = set()
    for batch in range(first, latest + 1):
        with filesystem.open_input_stream(batches[batch]) as stream:
            entries = _sink_log_entries(stream.read().decode(), batches[batch])
        for entry in entries:
            path = str(entry["path"])
            if entry.get("action", "add") == "delete":
                deleted.add(path)
            else:
                added[path] = None
    return [_uri_to_path(uri, filesystem) for uri in added if uri not in deleted]


def _listed_files(filesystem: pafs.FileSystem, dataset_dir: str) -> list[str]:
    """Every file under `dataset_dir` but those under a `_` or `.` name (logs, markers, checksums, temp files)."""
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(dataset_dir, recursive=True))
    except FileNotFoundError:
        return []
    prefix = dataset_dir.rstrip("/") + "/"
    return sorted(
        info.path
        for info in infos
        if info.type == pafs.FileType.File
        and not any(part.startswith(("_", ".")) for part in info.path.removeprefix(prefix).split("/"))
    )


def partition_filter(start: datetime | None = None, end: datetime | None = None) -> pc.Expression | None:
    """The partitions that may hold times in [start, end): pushed down, so no other file is opened."""
    date, hour = pc.field(DATE_COLUMN), pc.field(HOUR_COLUMN)
    conditions = []
    if start is not None:
        first_date, first_hour = partition_values(start)
        conditions.append((date > first_date) | ((date == first_date) & (hour >= first_hour)))
    if end is not None:
        # `end` is exclusive: the last partition is the one holding the microsecond before it.
        last_date, last_hour = partition_values(end - _TICK)
        conditions.append((date < last_date) | ((date == last_date) & (hour <= last_hour)))
    return _all(conditions)


def time_filter(column: str, start: datetime | None = None, end: datetime | None = None) -> pc.Expression | None:
    """Rows with `column` in [start, end); a column without a zone holds UTC, as Spark writes it."""
    # Compared at microseconds, the resolution of datetime: truncating finer values keeps the bounds exact.
    moment = pc.field(column).cast(_UTC_MICROS, safe=False)
    conditions = []
    if start is not None:
        conditions.append(moment >= pa.scalar(_utc(start), _UTC_MICROS))
    if end is not None:
        conditions.append(moment < pa.scalar(_utc(end), _UTC_MICROS))
    return _all(conditions)


def _all(conditions: Sequence[pc.Expression]) -> pc.Expression | None:
    combined = None
    for condition in conditions:
        combined = condition if combined is None else combined & condition
    return combined


def empty_table(dataset: Dataset, columns: Sequence[str] | None = None) -> pa.Table:
    """What reading a missing or empty dataset returns: no rows, its time column and partition columns.

    With `columns`, exactly those columns; a column the layout does not define has type null.
    """
    known = pa.schema([(TIME_COLUMNS[dataset], _UTC_MICROS), *PARTITION_SCHEMA])
    fields = list(known) if columns is None else [pa.field(name, _field_type(known, name)) for name in columns]
    return pa.schema(fields).empty_table()


def _field_type(schema: pa.Schema, name: str) -> pa.DataType:
    return schema.field(name).type if name in schema.names else pa.null()


def _checked(dataset: str) -> Dataset:
    if dataset not in DATASETS:
        raise LakeError(f"unknown dataset {dataset!r}: the lake holds {', '.join(DATASETS)}")
    return dataset


def read_dataset(
    settings: Settings,
    dataset: Dataset,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The rows of `dataset` with their time in [start, end) (aware datetimes; either may be None), with `date`/`hour`.

    Reads only the files committed in `_spark_metadata` when the dataset has that log, else every
    file outside `_`/`.` names. A missing or empty dataset gives `empty_table(dataset, columns)`.
    Raises S3Error (with the fix) when S3 cannot be reached, refuses the keys or lacks the bucket.
    """
    import pyarrow.dataset as ds  # imports pandas: only for the commands that read or write the lake

    time_column = TIME_COLUMNS[_checked(dataset)]
    filesystem = lake_filesystem(settings)
    root = dataset_path(settings, dataset)
    with explained(settings):
        files = committed_files(filesystem, root)
        if files is None:
            files = _listed_files(filesystem, root)
        if not files:
            return empty_table(dataset, columns)
        data = ds.dataset(
            files,
            filesystem=filesystem,
            format="parquet",
            partitioning=ds.partitioning(PARTITION_SCHEMA, flavor="hive"),
            partition_base_dir=root,
        )
        conditions = [partition_filter(start, end)]
        if time_column in data.schema.names:
            conditions.append(time_filter(time_column, start, end))
        return data.to_table(columns=columns, filter=_all([c for c in conditions if c is not None]))


def with_partition_columns(table: pa.Table, time_column: str) -> pa.Table:
    """`table` sorted by `time_column`, with `date` and `hour` derived from its UTC time (replacing any given)."""
    if time_column not in table.schema.names or not pa.types.is_timestamp(table.schema.field(time_column).type):
        raise LakeError(f"the table needs a timestamp column {time_column!r} to be partitioned by")
    if table[time_column].null_count:
        raise LakeError(f"{table[time_column].null_count} row(s) have no {time_column}: they belong in no partition")
    table = table.drop_columns([c for c in PARTITION_SCHEMA.names if c in table.schema.names]).sort_by(time_column)
    utc = table[time_column].cast(_UTC_MICROS, safe=False)
    table = table.append_column(DATE_COLUMN, pc.strftime(utc, format="%Y-%m-%d"))
    return table.append_column(HOUR_COLUMN, pc.hour(utc).cast(pa.int32()))


def write_dataset(settings: Settings, dataset: Dataset, table: pa.Table) -> list[str]:
    """Write `table` into `dataset` in the lake's layout, next to what is there; the new files, relative to it.

    For tests and backfill tooling: no `_spark_metadata` log is written, so on a dataset that has
    one (written by the stream job) these files stay invisible to `read_dataset`. Each call adds
    files named `part-<random>-<n>.parquet`, so it never overwrites earlier files.
    """
    partitioned = with_partition_columns(table, TIME_COLUMNS[_checked(dataset)])
    written = write_partitioned(settings, partitioned, dataset_path(settings, dataset))
    logger.info("wrote %d row(s) in %d file(s) to %s", table.num_rows, len(written), dataset_uri(settings, dataset))
    return written


def write_partitioned(settings: Settings, partitioned: pa.Table, root: str) -> list[str]:
    """Parquet files of a table with its `date`/`hour` columns under `root` (a `dataset_path`); the files, relative.

    New files are named `part-<random>-<n>.parquet`, so a call never overwrites earlier ones.
    """
    import pyarrow.dataset as ds  # imports pandas: only for the commands that read or write the lake

    written: list[str] = []
    with explained(settings):
        ds.write_dataset(
            partitioned,
            root,
            filesystem=lake_filesystem(settings),
            format="parquet",
            partitioning=ds.partitioning(PARTITION_SCHEMA, flavor="hive"),
            basename_template=f"part-{uuid.uuid4().hex}-{{i}}.parquet",
            existing_data_behavior="overwrite_or_ignore",
            # S3 has no directories; pyarrow would otherwise write empty marker objects.
            create_dir=settings.lake.backend == "local",
            file_visitor=lambda file: written.append(file.path.removeprefix(root.rstrip("/") + "/")),
        )
    return sorted(written)
