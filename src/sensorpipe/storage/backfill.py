"""Rebuild the database from the lake: `sensor_data` from `raw`, then the one-minute aggregates from it.

The way back after a lost or truncated database. Readings go in through the same idempotent writer as
the stream job's (a reading already stored is skipped, not duplicated, and those stored are merged into
their minutes); then the aggregates of every minute in the range are computed again from `sensor_data`
(storage/minutes.py) and upserted, touching only rows whose values differ: a lost `sensor_data_1m` comes
back too.
Running a backfill twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sensorpipe.config import Settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.storage.errors import connected
from sensorpipe.storage.lake import RAW, read_dataset
from sensorpipe.storage.minutes import RECOMPUTE_MINUTES
from sensorpipe.storage.writer import DatabaseWriter

WRITE_BATCH_ROWS = 50_000
"""Readings per COPY: large enough to amortise a round trip, small enough to retry cheaply."""


@dataclass
class BackfillReport:
    """What a backfill did, day by day summed."""

    days: int = 0
    lake_readings: int = 0
    stored: int = 0
    already_stored: int = 0
    minutes_changed: int = 0
    """Minutes the stored readings were merged into, plus those the recomputation corrected."""
    empty_days: list[str] = field(default_factory=list)


def days(first: date, last: date) -> Iterator[date]:
    """Every UTC day from `first` to `last`, both included."""
    for offset in range((last - first).days + 1):
        yield first + timedelta(days=offset)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def backfill(
    settings: Settings, first: date, last: date, progress: Callable[[date, BackfillReport], None] | None = None
) -> BackfillReport:
    """Load the lake's readings of days `first`..`last` (UTC) into the database, then their minutes.

    One day at a time: a day's readings are read from the lake (only files the stream job committed),
    written in batches of WRITE_BATCH_ROWS, then that day's aggregates are recomputed. `progress` is
    called after each day with the report so far. Raises S3Error/LakeError/StorageError with the fix.
    """
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    report = BackfillReport()
    with DatabaseWriter(settings.postgres, application_name="sensorpipe-backfill") as writer:
        for day in days(first, last):
            start, end = day_bounds(day)
            readings = read_dataset(settings, RAW, start=start, end=end, columns=list(READING_COLUMNS))
            report.days += 1
            report.lake_readings += readings.num_rows
            if not readings.num_rows:
                report.empty_days.append(day.isoformat())
            for batch in readings.to_batches(max_chunksize=WRITE_BATCH_ROWS):
                result = writer.write_readings(batch)
                report.stored += result.written
                report.already_stored += result.skipped
                report.minutes_changed += result.minutes
            report.minutes_changed += recompute_minutes(settings, start, end)
            if progress is not None:
                progress(day, report)
    return report


def recompute_minutes(settings: Settings, start: datetime, end: datetime) -> int:
    """Upsert the one-minute aggregates of [start, end) from `sensor_data`; the rows that changed."""
    with connected(settings.postgres, "writer") as conn:
        return conn.execute(RECOMPUTE_MINUTES, {"start": start, "end": end}).rowcount


__all__ = ["BackfillReport", "backfill", "day_bounds", "days", "recompute_minutes"]
