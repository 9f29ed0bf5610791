"""Upkeep of the lake's tables: retention, compaction, `VACUUM`, then a log checkpoint, without a JVM.

Run by the stream job every `lake.maintenance_interval_s` (on its commit thread, between two commits)
and by hand with `sensorpipe lake maintain`. Every step is a Delta commit of its own, made with the same
protocol as the job's commits (storage/lake.py), so it is safe beside a running job: compaction only
rewrites files into larger ones (readers of any snapshot see the same rows; Delta's streaming source
passes such commits over), retention deletes whole days, and `VACUUM` deletes only files no snapshot
younger than `lake.vacuum_retention_hours` still lists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sensorpipe.config import Settings
from sensorpipe.storage.lake import DATASETS, DATE_COLUMN, Dataset, delta_table, explained

logger = logging.getLogger(__name__)

MIB = 1024 * 1024


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

    Retention deletes whole days: a day stays until all of it is older than `lake.retention_days`.
    """
    started = time.monotonic()
    table = delta_table(settings, dataset)
    if table is None:
        return None
    with explained(settings):
        deleted = 0
        cutoff = retention_cutoff(settings, now or datetime.now(UTC))
        if cutoff is not None:
            deleted = int(table.delete(f"{DATE_COLUMN} < '{cutoff}'").get("num_deleted_rows", 0))
        compacted = table.optimize.compact(target_size=settings.lake.target_file_mb * MIB)
        vacuumed = table.vacuum(
            retention_hours=settings.lake.vacuum_retention_hours, dry_run=False, enforce_retention_duration=False
        )
        table.create_checkpoint()  # of the newest version: readers start from it instead of every log file
        table.cleanup_metadata()  # log files older than the table's log retention (30 days), now checkpointed
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


def maintain_all(settings: Settings, now: datetime | None = None) -> list[Upkeep]:
    """`maintain` every table the lake holds."""
    return [upkeep for dataset in DATASETS if (upkeep := maintain(settings, dataset, now)) is not None]
