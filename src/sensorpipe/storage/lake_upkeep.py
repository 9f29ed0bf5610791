"""Upkeep of the lake's tables: retention, compaction, `VACUUM`, then a log checkpoint, without a JVM.

Run by the stream job every `lake.maintenance_interval_s` (on its commit thread, between two commits)
and by hand with `sensorpipe lake maintain`. Every step is a Delta commit of its own, made with the same
protocol as the job's commits (storage/lake.py), so it is safe beside a running job's appends:
compaction only rewrites files into larger ones (readers of any snapshot see the same rows; Delta's
streaming source passes such commits over), retention deletes whole days, and `VACUUM` deletes only
files no snapshot younger than `lake.vacuum_retention_hours` still lists.

Two upkeeps must not run at once: delta-rs 1.6.6 lets two compactions of the same files both commit
(each rebased over the other), which puts their rows in the table twice (measured: three concurrent
compactions of 20 files left every row three times). So an upkeep holds a lock, an object created only
if it does not exist (`If-None-Match: *` on S3, `O_EXCL` locally) and deleted when done; one older
than LOCK_STALE_S belongs to an upkeep that was killed, and is taken over.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.lake import DATASETS, DATE_COLUMN, Dataset, delta_table, explained, table_properties
from sensorpipe.storage.s3 import explain, s3_client

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
LOCK = "_locks/upkeep"
"""The lock object, relative to the lake root."""
LOCK_STALE_S = 3600.0
LOCK_WAIT_S = 600.0


class UpkeepBusy(SensorpipeError):
    """Another upkeep of the same lake holds the lock."""


@contextmanager
def upkeep_lock(settings: Settings, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the lake's upkeep lock, waiting up to `wait_s` for another holder (UpkeepBusy after that)."""
    deadline = time.monotonic() + wait_s
    holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}).encode()
    while not _take(settings, holder):
        if time.monotonic() > deadline:
            raise UpkeepBusy(
                f"another upkeep of the lake holds {LOCK} (a running stream job's, or `sensorpipe lake maintain`):"
                " try again when it is done"
            )
        time.sleep(1.0)
    try:
        yield
    finally:
        _release(settings)


def _take(settings: Settings, holder: bytes) -> bool:
    """Create the lock if absent (True); take over a stale one."""
    if settings.lake.backend == "local":
        path = settings.lake_dir / LOCK
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if time.time() - _modified(path) > LOCK_STALE_S:
                path.unlink(missing_ok=True)
            return False
        with os.fdopen(descriptor, "wb") as f:
            f.write(holder)
        return True
    client = s3_client(settings.s3)
    try:
        client.put_object(Bucket=settings.s3.bucket, Key=LOCK, Body=holder, IfNoneMatch="*")
        return True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in {"PreconditionFailed", "ConditionalRequestConflict"}:
            raise explain(settings.s3, e) from e
    except BotoCoreError as e:
        raise explain(settings.s3, e) from e
    try:
        head = client.head_object(Bucket=settings.s3.bucket, Key=LOCK)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
            return False  # released between our try and this look: try again
        raise explain(settings.s3, e) from e
    if time.time() - head["LastModified"].timestamp() > LOCK_STALE_S:
        client.delete_object(Bucket=settings.s3.bucket, Key=LOCK)
    return False


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _release(settings: Settings) -> None:
    if settings.lake.backend == "local":
        (settings.lake_dir / LOCK).unlink(missing_ok=True)
    else:
        s3_client(settings.s3).delete_object(Bucket=settings.s3.bucket, Key=LOCK)


@dataclass(frozen=True)
class Upkeep:
    """What one upkeep run did to one table."""

    dataset: str
    version: int
    """The table's version afterwards."""
    rows_deleted: int
    """Rows of days older than `lake.retention_days`."""
    files_compacted: int
    """Small files rewritten ..."""
    files_written: int
    """... into this many larger ones."""
    files_vacuumed: int
    """Files no recent snapshot lists, deleted."""
    seconds: float


def retention_cutoff(settings: Settings, now: datetime) -> str | None:
    """The first UTC day `lake.retention_days` keeps (`YYYY-MM-DD`); None when everything is kept."""
    days = settings.lake.retention_days
    return None if days is None else (now.astimezone(UTC) - timedelta(days=days)).strftime("%Y-%m-%d")


def maintain(settings: Settings, dataset: Dataset, now: datetime | None = None) -> Upkeep | None:
    """Retention, compaction to `lake.target_file_mb`, `VACUUM` and a log checkpoint of one table; None if absent.

    Only under `upkeep_lock` (as `maintain_all` takes it): never beside another upkeep.

    Retention deletes whole days: a day stays until all of it is older than `lake.retention_days`.
    """
    started = time.monotonic()
    table = delta_table(settings, dataset)
    if table is None:
        return None
    with explained(settings):
        wanted = table_properties(settings)
        if any(table.metadata().configuration.get(key) != value for key, value in wanted.items()):
            table.alter.set_table_properties(wanted)  # the settings changed since the table was created
        deleted = 0
        cutoff = retention_cutoff(settings, now or datetime.now(UTC))
        if cutoff is not None:
            deleted = int(table.delete(f"{DATE_COLUMN} < '{cutoff}'").get("num_deleted_rows", 0))
        compacted = table.optimize.compact(target_size=settings.lake.target_file_mb * MIB)
        vacuumed = table.vacuum(
            retention_hours=settings.lake.vacuum_retention_hours, dry_run=False, enforce_retention_duration=False
        )
        table.create_checkpoint()  # of the newest version: readers start from it instead of every log file
        table.cleanup_metadata()  # log files older than `lake.log_retention_days`, now checkpointed
    upkeep = Upkeep(
        dataset=dataset,
        version=table.version(),
        rows_deleted=deleted,
        files_compacted=int(compacted["numFilesRemoved"]),
        files_written=int(compacted["numFilesAdded"]),
        files_vacuumed=len(vacuumed),
        seconds=round(time.monotonic() - started, 3),
    )
    logger.info(
        "lake upkeep of %s: %d old row(s) deleted, %d file(s) compacted into %d, %d vacuumed, now version %d",
        dataset,
        upkeep.rows_deleted,
        upkeep.files_compacted,
        upkeep.files_written,
        upkeep.files_vacuumed,
        upkeep.version,
    )
    return upkeep


def maintain_all(settings: Settings, now: datetime | None = None, wait_s: float = LOCK_WAIT_S) -> list[Upkeep]:
    """`maintain` every table the lake holds, holding the upkeep lock (waiting up to `wait_s` for it)."""
    with upkeep_lock(settings, wait_s):
        return [upkeep for dataset in DATASETS if (upkeep := maintain(settings, dataset, now)) is not None]
