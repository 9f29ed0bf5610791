"""The lake: two Delta tables, their layout in one place, and reading and appending them without a JVM.

Layout (docs/design.md "Storage layout"): one Delta table per dataset under the lake root (`s3://<bucket>/`
or `Settings.lake_dir`), partitioned by UTC date: `raw/date=2026-11-27/part-….parquet` beside the table's
log `raw/_delta_log/`. Each row also carries its UTC `hour`, a plain column. Only the files of the
table's current snapshot are data: a crashed write leaves files no commit lists, and no reader sees them.

Everything here goes through delta-rs (the `deltalake` package): the stream job's lake commits
(stream/lake_commit.py), maintenance, backfill, doctor and the bench read and write the same snapshot
with the same commit protocol, which on S3 uses conditional writes (`If-None-Match`), so a second writer
(`sensorpipe lake maintain` beside a running job) can never overwrite a commit. Spark reads `raw` as a
stream through Delta's own jars (the aggregates).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, get_args
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from botocore.exceptions import BotoCoreError, ClientError

from sensorpipe.config import Settings
from sensorpipe.contract.measurements import MEASUREMENTS
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.s3 import S3Error, explain, s3_client

if TYPE_CHECKING:
    from deltalake import DeltaTable, Transaction

__all__ = [
    "AGG_1M",
    "DATASETS",
    "DATE_COLUMN",
    "HOUR_COLUMN",
    "PARTITION_SCHEMA",
    "RAW",
    "SCHEMAS",
    "TIME_COLUMNS",
    "Dataset",
    "LakeError",
    "append",
    "conformed",
    "dataset_path",
    "dataset_uri",
    "delta_table",
    "empty_table",
    "ensure_table",
    "lake_filesystem",
    "offsets_app_id",
    "partition_filter",
    "partition_path",
    "partition_values",
    "read_dataset",
    "storage_options",
    "table_files",
    "table_properties",
    "table_uri",
    "time_filter",
    "with_partition_columns",
    "write_dataset",
    "write_partitioned",
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
"""`date` as `YYYY-MM-DD` and `hour` 0 to 23, both in UTC. The tables are partitioned by `date` alone:
a partition per hour would make 24 small files a day where one does (docs/performance.md, "Lake")."""
PARTITION_BY: Final = [DATE_COLUMN]

_UTC_MICROS = pa.timestamp("us", tz="UTC")
_TICK = timedelta(microseconds=1)
_MEASURED = [(m.name, pa.float64()) for m in MEASUREMENTS]
SCHEMAS: Final[dict[Dataset, pa.Schema]] = {
    RAW: pa.schema(
        [
            ("time", _UTC_MICROS),
            ("sensor_id", pa.string()),
            *_MEASURED,
            ("raw_data", pa.string()),
            ("time_source", pa.string()),
            ("kafka_partition", pa.int32()),
            ("kafka_offset", pa.int64()),
            ("name", pa.string()),
            ("location", pa.string()),
            ("kind", pa.string()),
            *PARTITION_SCHEMA,
        ]
    ),
    AGG_1M: pa.schema(
        [
            ("sensor_id", pa.string()),
            ("readings", pa.int32()),
            *[(f"{stat}_{m.name}", pa.float64()) for m in MEASUREMENTS for stat in ("avg", "min", "max")],
            ("bucket", _UTC_MICROS),
            *PARTITION_SCHEMA,
        ]
    ),
}
"""The columns of each table: a reading as the database stores it plus the sensor's metadata; an aggregate."""


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
    """Path of the partition holding `moment`, relative to the lake root: `raw/date=2026-11-27`."""
    date, _hour = partition_values(moment)
    return f"{dataset}/{DATE_COLUMN}={date}"


def dataset_uri(settings: Settings, dataset: Dataset) -> str:
    """Where Spark writes and reads `dataset`: `s3a://bucket/raw` or `file:///abs/lake/raw`."""
    return f"{settings.lake_uri.rstrip('/')}/{dataset}"


def table_uri(settings: Settings, dataset: Dataset) -> str:
    """Where delta-rs finds `dataset`: `s3://bucket/raw` or the absolute local directory."""
    if settings.lake.backend == "local":
        return str(settings.lake_dir / dataset)
    return f"s3://{settings.s3.bucket}/{dataset}"


def storage_options(settings: Settings) -> dict[str, str]:
    """delta-rs's options for the `[s3]` section; none for a local lake (atomic renames guard its commits).

    `conditional_put=etag` makes a commit an `If-None-Match` write, so two writers (the job's commits and a
    maintenance run) can never both create the same log version: checked against SeaweedFS 4.48.
    """
    if settings.lake.backend == "local":
        return {}
    s3 = settings.s3
    return {
        "AWS_ENDPOINT_URL": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key.get_secret_value(),
        "AWS_REGION": s3.region,
        "AWS_ALLOW_HTTP": str(urlsplit(s3.endpoint).scheme == "http").lower(),
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        "conditional_put": "etag",
    }


def dataset_path(settings: Settings, dataset: str) -> str:
    """Where `dataset` (or any directory of the lake) lives inside `lake_filesystem(settings)`: `bucket/raw`."""
    if settings.lake.backend == "local":
        return str(settings.lake_dir / dataset)
    return f"{settings.s3.bucket}/{dataset}"


def lake_filesystem(settings: Settings, attempts: int = 3) -> pafs.FileSystem:
    """The configured lake as a pyarrow filesystem, with the endpoint, keys and region of the `[s3]` section.

    `attempts`: how often a failing S3 request is tried (AWS's standard backoff, doubling up to 20 s).
    """
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
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=attempts),
    )


@contextmanager
def explained(settings: Settings) -> Iterator[None]:
    """pyarrow and delta-rs report S3 failures as bare errors; ask boto3 what is wrong so the message names the fix."""
    from deltalake.exceptions import DeltaError

    try:
        yield
    except (OSError, DeltaError) as e:
        if settings.lake.backend == "local":
            if isinstance(e, DeltaError):
                raise LakeError(f"the lake's Delta table under {settings.lake_dir} failed: {e}") from e
            raise
        s3 = settings.s3
        try:
            s3_client(s3, timeout_s=3.0, retries=1).list_objects_v2(Bucket=s3.bucket, MaxKeys=1)
        except (ClientError, BotoCoreError) as probe_error:
            raise explain(s3, probe_error) from e
        if isinstance(e, DeltaError):
            raise LakeError(f"the lake's Delta table in s3://{s3.bucket} failed: {e}") from e
        raise S3Error(f"S3 at {s3.endpoint} failed: {e}") from e


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


def offsets_app_id(topic: str, topic_id: str, partition: int) -> str:
    """The Delta application transaction of `raw` that records its highest Kafka offset of one partition.

    The topic's id is part of it: a topic deleted and created again counts its offsets afresh.
    """
    return f"sensorpipe:{topic}:{topic_id}:{partition}"


def table_files(table: DeltaTable) -> pa.Table:
    """The snapshot's data files: `path`, `size_bytes`, `num_records`, `partition.<column>` … (its add actions)."""
    return pa.table(table.get_add_actions(flatten=True))  # delta-rs hands them over as an Arrow stream


def delta_table(settings: Settings, dataset: Dataset) -> DeltaTable | None:
    """The current snapshot of `dataset`, or None when no table is there yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = table_uri(settings, _checked(dataset))
    with explained(settings):
        try:
            return DeltaTable(uri, storage_options=storage_options(settings))
        except TableNotFoundError:
            return None


def table_properties(settings: Settings) -> dict[str, str]:
    """The Delta properties sensorpipe sets on its tables (at creation, and again by upkeep when changed).

    The log's retention bounds its length: delta-rs 1.6.6 takes longer per commit the more files the log
    directory holds (0.09 s with one, 0.75 s with 8,000, on SeaweedFS; docs/performance.md "Lake"), and
    Delta's default keeps 30 days of log, ~45,000 files at one commit a minute.
    """
    return {"delta.logRetentionDuration": f"interval {settings.lake.log_retention_days} days"}


def ensure_table(settings: Settings, dataset: Dataset) -> DeltaTable:
    """`dataset`'s table, created empty (its schema, partitioned by date) when there is none yet."""
    from deltalake import DeltaTable

    table = delta_table(settings, dataset)
    if table is not None:
        return table
    with explained(settings):
        created = DeltaTable.create(
            table_uri(settings, dataset),
            SCHEMAS[dataset],
            partition_by=PARTITION_BY,
            mode="ignore",  # another writer created it meanwhile: theirs is the same table
            name=dataset,
            configuration=dict(table_properties(settings)),
            storage_options=storage_options(settings),
        )
    logger.info("created the lake's Delta table %s", dataset_uri(settings, dataset))
    return created


def conformed(table: pa.Table, dataset: Dataset) -> pa.Table:
    """`table` as `dataset`'s columns, in order and type; a column it lacks is null."""
    schema = SCHEMAS[dataset]
    columns = [
        table[field.name].cast(field.type) if field.name in table.schema.names else pa.nulls(len(table), field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def append(
    settings: Settings,
    dataset: Dataset,
    table: pa.Table,
    transactions: Sequence[Transaction] = (),
    target: DeltaTable | None = None,
) -> None:
    """Append `table` (with its `date`/`hour` columns) to `dataset` as one Delta commit.

    `transactions` (application id, version) are recorded in the same commit: the stream job's way to
    know which Kafka offsets the lake holds (stream/lake_commit.py), atomically with the rows themselves.
    `target` is the table already loaded, which the commit then brings forward (not loaded again).
    """
    from deltalake import CommitProperties, write_deltalake

    with explained(settings):
        write_deltalake(
            target if target is not None else table_uri(settings, dataset),
            conformed(table, dataset),
            mode="append",
            partition_by=PARTITION_BY,
            configuration=dict(table_properties(settings)),  # used when this write creates the table
            storage_options=None if target is not None else storage_options(settings),
            commit_properties=CommitProperties(app_transactions=list(transactions)) if transactions else None,
        )


def read_dataset(
    settings: Settings,
    dataset: Dataset,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The rows of `dataset` with their time in [start, end) (aware datetimes; either may be None), with `date`/`hour`.

    Reads the table's current snapshot: committed files only, the dates outside [start, end) never opened.
    A missing table gives `empty_table(dataset, columns)`.
    Raises S3Error (with the fix) when S3 cannot be reached, refuses the keys or lacks the bucket.
    """
    time_column = TIME_COLUMNS[_checked(dataset)]
    table = delta_table(settings, dataset)
    if table is None:
        return empty_table(dataset, columns)
    with explained(settings):
        data = table.to_pyarrow_dataset()
        conditions = [partition_filter(start, end), time_filter(time_column, start, end)]
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


def write_dataset(settings: Settings, dataset: Dataset, table: pa.Table) -> int:
    """Append `table` (the dataset's columns but `date`/`hour`, which are derived) to `dataset`; the new version.

    For tests and backfill tooling: one Delta commit, so readers see all of it or none of it.
    """
    partitioned = with_partition_columns(table, TIME_COLUMNS[_checked(dataset)])
    append(settings, dataset, partitioned)
    written = delta_table(settings, dataset)
    assert written is not None
    logger.info("appended %d row(s) to %s", table.num_rows, dataset_uri(settings, dataset))
    return written.version()


def write_partitioned(settings: Settings, partitioned: pa.Table, root: str) -> list[str]:
    """Parquet files of a table with its `date`/`hour` columns under `root`, in Hive layout; the files, relative.

    For the bench's S3 ceiling (plain files, no table). New files are named `part-<random>-<n>.parquet`,
    so a call never overwrites earlier ones.
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
