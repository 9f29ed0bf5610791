"""A lake written by Spark's file sink (sensorpipe before its Delta tables) made into the Delta tables.

`raw`: exactly the files its `_spark_metadata` log committed (storage/sink_log.py) are read and appended
to the Delta table through the lake's commit (stream/lake_commit.py), which records their Kafka offsets:
each reading once, and a run cut short and started again adds nothing twice. Then the old layout goes
(`date=…/hour=…/` directories, orphaned part files with them, and the log).

`agg_1m` is not copied: the aggregates queries read `raw` through a new source (the Delta table), so
their checkpoints are deleted and they compute every minute again from all of `raw`, into `agg_1m` and
(idempotent upserts) `sensor_data_1m`. The readings query's checkpoint stays: its source is unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from sensorpipe.clients.kafka_client import topic_id
from sensorpipe.config import Settings
from sensorpipe.storage.lake import (
    DATASETS,
    PARTITION_SCHEMA,
    RAW,
    Dataset,
    conformed,
    dataset_path,
    dataset_uri,
    explained,
    lake_filesystem,
    with_partition_columns,
)
from sensorpipe.storage.sink_log import SPARK_METADATA_DIR, committed_files
from sensorpipe.stream.checkpoints import checkpoint_uri, delete_tree, tree_exists
from sensorpipe.stream.lake_commit import LakeCommits

logger = logging.getLogger(__name__)

RECOMPUTED = ("aggregates_lake",)
"""Queries whose source changes with the migration: their checkpoints go, and they start over on `raw`."""


@dataclass(frozen=True)
class Migrated:
    """What `migrate_lake` did."""

    readings: int
    """Readings appended to `raw` (those its log committed, less any an earlier run appended)."""
    files_read: int
    """Files the file sink log of `raw` committed."""
    removed: list[str]
    """Directories of the old layout and checkpoints deleted."""


def file_sink_datasets(settings: Settings) -> list[Dataset]:
    """The datasets that still have a file sink log: a lake to migrate when not empty."""
    filesystem = lake_filesystem(settings)
    with explained(settings):
        return [
            dataset
            for dataset in DATASETS
            if filesystem.get_file_info(f"{dataset_path(settings, dataset)}/{SPARK_METADATA_DIR}").type
            == pafs.FileType.Directory
        ]


def migrate_lake(settings: Settings) -> Migrated | None:
    """Make a file-sink lake into the Delta tables; None when there is nothing to migrate."""
    legacy = file_sink_datasets(settings)
    if not legacy:
        return None
    filesystem = lake_filesystem(settings)
    readings, files = 0, 0
    if RAW in legacy:
        with explained(settings):
            committed = committed_files(filesystem, dataset_path(settings, RAW)) or []
            files = len(committed)
            if committed:
                commits = LakeCommits(settings, topic_id(settings.kafka, settings.kafka.topic))
                fresh = commits.not_yet_committed(_read_legacy(settings, filesystem, committed))
                if fresh.num_rows:
                    commits.append(with_partition_columns(fresh, "time"))
                readings = fresh.num_rows
    removed = [uri for dataset in legacy for uri in _old_layout(settings, filesystem, dataset)]
    removed += [uri for uri in (checkpoint_uri(settings, q) for q in RECOMPUTED) if tree_exists(settings, uri)]
    for uri in removed:
        delete_tree(settings, uri)
    logger.warning(
        "migrated the lake to Delta tables: %d reading(s) from the %d file(s) the file sink committed;"
        " the aggregates compute agg_1m again from raw",
        readings,
        files,
    )
    return Migrated(readings=readings, files_read=files, removed=removed)


def _read_legacy(settings: Settings, filesystem: pafs.FileSystem, files: list[str]) -> pa.Table:
    """The rows of the committed files, as `raw`'s columns (a column the old files lack is null)."""
    import pyarrow.dataset as ds  # imports pandas: only for the commands that read or write the lake

    root = dataset_path(settings, RAW)
    data = ds.dataset(
        files,
        filesystem=filesystem,
        format="parquet",
        partitioning=ds.partitioning(PARTITION_SCHEMA, flavor="hive"),
        partition_base_dir=root,
    )
    return conformed(data.to_table(), RAW)


def _old_layout(settings: Settings, filesystem: pafs.FileSystem, dataset: Dataset) -> list[str]:
    """The URIs of the file sink's log and of every `date=…/hour=…` directory under `dataset`."""
    root = dataset_path(settings, dataset)
    uri = dataset_uri(settings, dataset)
    found = [f"{uri}/{SPARK_METADATA_DIR}"]
    with explained(settings):
        for day in filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
            if day.type != pafs.FileType.Directory or not day.base_name.startswith("date="):
                continue
            for hour in filesystem.get_file_info(pafs.FileSelector(day.path)):
                if hour.type == pafs.FileType.Directory and hour.base_name.startswith("hour="):
                    found.append(f"{uri}/{day.base_name}/{hour.base_name}")
    return found
