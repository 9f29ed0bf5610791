"""The lake's staging area: readings the database stored, waiting for the next lake commit.

The stream job's tasks write each readings batch's stored readings here (one Parquet file per task,
named by batch and task, so a retried or replayed task overwrites its own file), and the lake commit
(stream/lake_commit.py) moves them into the `raw` table every `lake.commit_interval_s` as one Delta
commit of large files. A file is written whole or not at all: on S3 one PUT, locally a rename.

It lives beside the tables (`<lake>/_staging/raw/`), never inside one, so no table maintenance
(`VACUUM`) can take it for a table's stray file.
"""

from __future__ import annotations

import uuid
from typing import Final

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sensorpipe.config import Settings
from sensorpipe.storage.lake import RAW, dataset_path, explained, lake_filesystem

STAGING_DIR: Final = f"_staging/{RAW}"
STAGE_ATTEMPTS = 10
"""Tries of a staging write: AWS's standard backoff doubles up to 20 s, so ~50 s in all."""


def staging_path(settings: Settings) -> str:
    return dataset_path(settings, STAGING_DIR)


def stage(settings: Settings, batch_id: int, task: int, readings: pa.Table) -> str:
    """Write `readings` as the file of (`batch_id`, `task`), replacing an earlier attempt's; its path.

    Rides out an S3 server's restart (STAGE_ATTEMPTS): a write that gives up fails its task and, in
    local mode, the stream job with it (the fault test's S3 kill did, with the default 3 attempts).
    """
    filesystem = lake_filesystem(settings, attempts=STAGE_ATTEMPTS)
    path = f"{staging_path(settings)}/batch-{batch_id:012d}-task-{task:05d}.parquet"
    with explained(settings):
        if settings.lake.backend == "local":
            filesystem.create_dir(staging_path(settings), recursive=True)
            temporary = f"{staging_path(settings)}/.{uuid.uuid4().hex}.tmp"
            pq.write_table(readings, temporary, filesystem=filesystem)
            filesystem.move(temporary, path)
        else:
            pq.write_table(readings, path, filesystem=filesystem)
    return path


def staged_files(settings: Settings) -> list[str]:
    """The staged files, oldest batch first (hidden temporary files left out)."""
    filesystem = lake_filesystem(settings)
    with explained(settings):
        infos = filesystem.get_file_info(pafs.FileSelector(staging_path(settings), allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and not i.base_name.startswith("."))


def read_staged(settings: Settings, files: list[str], schema: pa.Schema) -> pa.Table:
    """The rows of `files`, in their order, as `schema`."""
    filesystem = lake_filesystem(settings)
    with explained(settings):
        tables = [pq.read_table(path, filesystem=filesystem).select(schema.names).cast(schema) for path in files]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def remove_staged(settings: Settings, files: list[str]) -> None:
    filesystem = lake_filesystem(settings)
    with explained(settings):
        for path in files:
            filesystem.delete_file(path)
