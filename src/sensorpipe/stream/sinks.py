"""What the stream job's executors run: each partition of a micro-batch decoded and written to PostgreSQL.

Nothing here runs on the driver and no row is collected to it (docs/design.md: "the database sink writes
from executors with COPY"). The writer is a `mapInArrow` function: Spark hands each partition's Kafka
rows to a Python worker as Arrow record batches (columnar, timestamps as UTC instants, no per-row
pickling); the worker decodes them (stream/decode.py) and the storage writer COPYs the readings and
rejects and merges the readings' one-minute aggregates. The readings writer stages the stored
readings for the lake's next commit (storage/staging.py) from the same task and returns its tally as rows,
a few per partition. It is built from the settings on the driver and holds no connection until a
partition arrives.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import TaskContext

from sensorpipe.config import Settings
from sensorpipe.contract.columns import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.contract.reference import Rules
from sensorpipe.storage.staging import stage
from sensorpipe.storage.writer import DatabaseWriter
from sensorpipe.stream.dead_letters import DeadLetters
from sensorpipe.stream.decode import ENCODING, decode_batch
from sensorpipe.stream.monitoring import READING_LATENCY_BUCKETS_S

TALLY_SCHEMA = "kind string, label string, rows long"
"""What a partition writer returns: (kind, label, rows) per thing it counted."""

REJECTED = "rejected"
STORED = "stored"
SKIPPED = "skipped"
LATENCY = "latency"
"""Kinds of tally rows: records per encoding, rejects per reason, rows stored and skipped per table, and
readings per latency bucket (label: the bucket's index in READING_LATENCY_BUCKETS_S; the last is +Inf)."""

ArrowWriter = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]


@dataclass
class Tally:
    """Summed tally rows of a micro-batch (see `TALLY_SCHEMA`)."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, rows: Iterable[tuple[str, str, int]]) -> Tally:
        for kind, label, n in rows:
            self.counts[(kind, label)] += n
        return self

    def of(self, kind: str) -> dict[str, int]:
        return {label: n for (k, label), n in self.counts.items() if k == kind}

    def rows(self, table: str) -> int:
        """Rows given to `table`: stored now, or skipped as stored before (a replayed batch)."""
        return self.counts[(STORED, table)] + self.counts[(SKIPPED, table)]


_TALLY_ARROW = pa.schema([("kind", pa.string()), ("label", pa.string()), ("rows", pa.int64())])


def _tally_batch(counts: Counter[tuple[str, str]]) -> pa.RecordBatch:
    rows = [{"kind": kind, "label": label, "rows": n} for (kind, label), n in counts.items()]
    return pa.RecordBatch.from_pylist(rows, schema=_TALLY_ARROW)


def latency_buckets(times_us: np.ndarray, now_s: float) -> Counter[tuple[str, str]]:
    """Readings per latency bucket (non-cumulative), plus the sum of their latencies in milliseconds."""
    latency_s = np.maximum(now_s - times_us / 1e6, 0.0)  # a sensor clock ahead of ours is "no delay"
    index = np.searchsorted(READING_LATENCY_BUCKETS_S, latency_s, side="left")
    per_bucket = np.bincount(index, minlength=len(READING_LATENCY_BUCKETS_S) + 1)
    counts: Counter[tuple[str, str]] = Counter({(LATENCY, str(i)): int(n) for i, n in enumerate(per_bucket) if n})
    counts[(LATENCY, "sum_ms")] = round(float(latency_s.sum()) * 1000)
    return counts


def _value_counts(column: pa.Array | pa.ChunkedArray) -> Iterator[tuple[str, int]]:
    for entry in pc.value_counts(column).to_pylist():
        yield str(entry["values"]), int(entry["counts"])


_WRITERS: dict[str, DatabaseWriter] = {}
"""One database writer per PostgreSQL per Python worker, kept across tasks and micro-batches: Spark
reuses its Python workers, and a connection opened per task and batch was 5 % of their time (py-spy)."""


def _database_writer(settings: Settings) -> DatabaseWriter:
    key = settings.postgres.dsn()
    if key not in _WRITERS:
        _WRITERS[key] = DatabaseWriter(settings.postgres, application_name="sensorpipe-stream")
    return _WRITERS[key]


def readings_writer(settings: Settings, batch_id: int) -> ArrowWriter:
    """Valid readings into `sensor_data` and their minutes into `sensor_data_1m` (one transaction), rejects
    into `sensor_rejects` (all idempotent) and onto the dead-letter topic; stages, for the lake, the valid
    readings (READING_COLUMNS) the database holds from these very records: each reading once, even when
    the bridge forwarded it twice.

    Input: the Kafka source's rows (stream/decode.py KAFKA_COLUMNS), decoded here. Output: the
    partition's tally (records per encoding, their element 0; rejects per reason; rows stored and skipped
    per table, minutes merged; latencies). The staged file is named by `batch_id` and the task's partition,
    so a retried or replayed task replaces its own. The worker's connection stays open for its next task
    (a failed task closes it: the next one starts on a fresh connection).
    """

    rules = Rules.from_settings(settings)

    def write(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        counts: Counter[tuple[str, str]] = Counter()
        dead_letters = DeadLetters(settings.kafka)
        for_lake: list[pa.Table] = []
        writer = _database_writer(settings)
        try:
            for batch in batches:
                table = decode_batch(batch, rules)
                firsts = table.filter(pc.equal(table["element"], 0))
                counts.update({(ENCODING, label): n for label, n in _value_counts(firsts[ENCODING])})
                valid = table.filter(pc.is_null(table["reason"])).select(list(READING_COLUMNS))
                rejects = table.filter(pc.is_valid(table["reason"])).select(list(REJECT_COLUMNS))
                counts.update({(REJECTED, label): n for label, n in _value_counts(rejects["reason"])})
                if rejects.num_rows:
                    rows = rejects.to_pylist()
                    result = writer.write_rejects([tuple(row.values()) for row in rows])
                    counts[(STORED, "sensor_rejects")] += result.written
                    counts[(SKIPPED, "sensor_rejects")] += result.skipped
                    dead_letters.publish(rows)
                if valid.num_rows:
                    result = writer.write_readings(valid)
                    counts[(STORED, "sensor_data")] += result.written
                    counts[(SKIPPED, "sensor_data")] += result.skipped
                    counts[(STORED, "sensor_data_1m")] += result.minutes
                    if result.written:  # not a replay: the readings just became queryable
                        times = valid["time"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
                        counts.update(latency_buckets(times, time.time()))
                    if result.skipped:  # a replay, or readings forwarded twice: the lake takes each once
                        valid = valid.take(pa.array(writer.first_copies(valid), pa.int64()))
                    for_lake.append(valid)
        except BaseException:
            writer.close()
            raise
        dead_letters.close()
        staged = pa.concat_tables(for_lake) if for_lake else None
        if staged is not None and staged.num_rows:
            task = TaskContext.get()  # None when called outside a Spark task (tests)
            stage(settings, batch_id, task.partitionId() if task is not None else 0, staged)
        yield _tally_batch(counts)

    return write
