"""The lake's commits: staged readings into the `raw` Delta table, at the lake's own pace, each reading once.

The readings query stores every micro-batch in the database and stages the stored readings (storage/
staging.py) from the same tasks: nothing is decoded twice, and no Spark job writes the lake per batch.
Every `lake.commit_interval_s` this driver thread moves what is staged into `raw` as one Delta commit,
enriched with `sensor_metadata`, sorted by time: a commit a minute instead of one per batch, and files of
a minute's readings instead of a second's.

Exactly once without trusting the order of events: each commit records, in the same atomic Delta
commit, the highest Kafka offset it holds per partition (a Delta application transaction per
`topic:topic id:partition`). A staged reading at or below its partition's recorded offset is already in
the table, so a replayed batch, a commit that crashed before cleaning up staging, or a reset checkpoint
re-reading Kafka add nothing twice. A topic deleted and created again has a new id, so its offsets count
afresh. Readings are staged only after the database stored them, as the copy it holds (a reading the
bridge forwarded twice is staged once), and a partition's staged files always form a gap-free run of
its offsets (a batch's task only runs after the previous batch finished), so the recorded offset is a
true "everything up to here".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe.config import Settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.lake import (
    RAW,
    SCHEMAS,
    append,
    ensure_table,
    explained,
    offsets_app_id,
    with_partition_columns,
)
from sensorpipe.storage.lake_upkeep import UpkeepBusy, maintain_all
from sensorpipe.storage.staging import read_staged, remove_staged, staged_files
from sensorpipe.stream.enrichment import METADATA_COLUMNS, read_metadata
from sensorpipe.stream.monitoring import StreamMetrics

if TYPE_CHECKING:
    from deltalake import DeltaTable

logger = logging.getLogger(__name__)

IDLE_CHECK_S = 1.0
"""How often the commit thread looks whether the readings went idle."""
_STAGED_SCHEMA = pa.schema([SCHEMAS[RAW].field(name) for name in READING_COLUMNS])
_METADATA_SCHEMA = pa.schema([(name, pa.string()) for name in METADATA_COLUMNS])


class LakeCommits:
    """Commits what is staged to `raw`, for one topic (its id, from `clients.kafka_client.topic_id`).

    `metadata` reads `sensor_metadata` rows (`enrichment.read_metadata`; tests pass their own).
    """

    def __init__(
        self,
        settings: Settings,
        topic_id: str,
        metadata: Callable[[Settings], list[tuple[str, str | None, str | None, str | None]]] = read_metadata,
    ) -> None:
        self._settings = settings
        self._topic = settings.kafka.topic
        self._topic_id = topic_id
        self._metadata = metadata
        self._table: DeltaTable | None = None

    def _raw(self) -> DeltaTable:
        """`raw` at its latest version: loaded once, then brought forward by the versions since, instead of
        loaded twice per commit (delta-rs's write still lists the log: docs/performance.md, lake age)."""
        if self._table is None:
            self._table = ensure_table(self._settings, RAW)
        else:
            with explained(self._settings):
                self._table.update_incremental()
        return self._table

    def app_id(self, partition: int) -> str:
        """The Delta application transaction recording the highest offset of `partition` in the table."""
        return offsets_app_id(self._topic, self._topic_id, partition)

    def append(self, readings: pa.Table) -> None:
        """Append `readings` (with `date`/`hour`) to `raw`, recording their highest offsets in the same commit."""
        from deltalake import Transaction

        offsets = highest_offsets(readings)
        transactions = [Transaction(self.app_id(p), v) for p, v in offsets.items()]
        append(self._settings, RAW, readings, transactions, target=self._raw())

    def commit(self) -> int:
        """Commit every staged reading not yet in `raw`, then clear what was staged; the rows committed."""
        files = staged_files(self._settings)
        if not files:
            return 0
        staged = read_staged(self._settings, files, _STAGED_SCHEMA)
        fresh = self.not_yet_committed(_unique(staged))
        if fresh.num_rows:
            self.append(with_partition_columns(_enriched(fresh, self._metadata(self._settings)), "time"))
        remove_staged(self._settings, files)
        logger.info(
            "lake commit: %d reading(s) from %d staged file(s) into %s (%d already there)",
            fresh.num_rows,
            len(files),
            RAW,
            staged.num_rows - fresh.num_rows,
        )
        return int(fresh.num_rows)

    def not_yet_committed(self, readings: pa.Table) -> pa.Table:
        """The rows above their partition's recorded offset (all of them in a new table)."""
        committed = self._raw().transaction_version
        keep = pa.array([False] * readings.num_rows, pa.bool_())
        for partition in pc.unique(readings["kafka_partition"]).drop_null().to_pylist():
            mine = pc.equal(readings["kafka_partition"], partition)
            done = committed(self.app_id(partition))
            keep = pc.or_(keep, mine if done is None else pc.and_(mine, pc.greater(readings["kafka_offset"], done)))
        return readings.filter(keep)


def _unique(readings: pa.Table) -> pa.Table:
    """Each (Kafka record, reading) once: files staged by a run before a checkpoint reset and by the run
    after it can both hold the same offsets before either is committed."""
    keys = ["kafka_partition", "kafka_offset", "sensor_id", "time"]
    numbered = readings.select(keys).append_column("row", pa.array(range(readings.num_rows), pa.int64()))
    firsts = numbered.group_by(keys, use_threads=False).aggregate([("row", "min")])["row_min"]
    return readings.take(pc.take(firsts, pc.sort_indices(firsts)))


def highest_offsets(readings: pa.Table) -> dict[int, int]:
    """The highest Kafka offset of each partition among `readings`."""
    grouped = readings.group_by("kafka_partition").aggregate([("kafka_offset", "max")])
    pairs = zip(grouped["kafka_partition"].to_pylist(), grouped["kafka_offset_max"].to_pylist(), strict=True)
    return {partition: offset for partition, offset in pairs if partition is not None and offset is not None}


def _enriched(readings: pa.Table, metadata: list[tuple[str, str | None, str | None, str | None]]) -> pa.Table:
    """`readings` with their sensor's name, location and kind (null for a sensor not in `sensor_metadata`)."""
    known = pa.Table.from_pylist([dict(zip(METADATA_COLUMNS, row, strict=True)) for row in metadata], _METADATA_SCHEMA)
    return readings.join(known, "sensor_id", join_type="left outer")


class LakeCommitLoop:
    """A driver thread that commits every `lake.commit_interval_s`, sooner when the readings go idle with
    readings staged (a burst reaches the lake as soon as it is over), and once more when stopped; and
    that keeps the tables up (storage/lake_upkeep.py) every `lake.maintenance_interval_s`, between two
    commits, so that the job's own writes never race its upkeep."""

    def __init__(self, commits: LakeCommits, settings: Settings, metrics: StreamMetrics) -> None:
        self._commits = commits
        self._settings = settings
        self._interval_s = settings.lake.commit_interval_s
        self._metrics = metrics
        self._last_upkeep = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lake-commit", daemon=True)
        self._last_commit = time.monotonic()
        self._read_at_last_commit = 0.0

    def start(self) -> None:
        self._thread.start()

    def commit_now(self) -> int:
        """One commit on the caller's thread (the loop must not be running)."""
        started = time.monotonic()
        read = self._read()
        rows = self._commits.commit()
        self._last_commit, self._read_at_last_commit = time.monotonic(), read
        self._metrics.record_lake_commit(rows, self._last_commit - started)
        return rows

    def _read(self) -> float:
        return self._metrics.value("input_rows_total", query="readings")

    def _due(self) -> bool:
        if time.monotonic() - self._last_commit >= self._interval_s:
            return True
        idle = self._metrics.value("batch_rows", query="readings") == 0
        return idle and self._read() > self._read_at_last_commit

    def _run(self) -> None:
        while not self._stop.wait(min(self._interval_s, IDLE_CHECK_S)):
            if self._due():
                try:
                    self.commit_now()
                except (SensorpipeError, OSError) as e:
                    # The readings stay staged and the database keeps its pace; the next commit tries again.
                    self._last_commit = time.monotonic()
                    logger.error("lake commit failed, will retry in %.0f s: %s", self._interval_s, e)
            every = self._settings.lake.maintenance_interval_s
            if every is not None and time.monotonic() - self._last_upkeep >= every:
                self._last_upkeep = time.monotonic()
                try:
                    maintain_all(self._settings, wait_s=0)
                except UpkeepBusy as e:
                    logger.info("lake upkeep skipped this time: %s", e)
                except (SensorpipeError, OSError) as e:
                    logger.error("lake upkeep failed, will try again in %.0f s: %s", every, e)

    def stop(self) -> None:
        """Stop the loop, then commit what the stopped queries staged last."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.commit_now()
