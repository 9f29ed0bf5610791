"""What the stream job's executors run: each partition of a micro-batch written to PostgreSQL by its own writer.

Nothing here runs on the driver and no row is collected to it (DESIGN.md: "the database sink writes
from executors with COPY"). The functions are `mapInArrow` functions: Spark hands each partition to a
Python worker as Arrow record batches (columnar, timestamps as UTC instants, no per-row pickling), the
storage writer COPYs them, and each partition returns only a tally of what it did: a few rows the
driver sums into the job's metrics. The functions are built from the settings on the driver and hold no
connection until a partition arrives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe.config import PostgresSettings
from sensorpipe.storage.writer import READING_COLUMNS, REJECT_COLUMNS, DatabaseWriter

TALLY_SCHEMA = "kind string, label string, rows long"
"""What a partition writer returns: (kind, label, rows) per thing it counted."""

ENCODING = "encoding"
REJECTED = "rejected"
STORED = "stored"
SKIPPED = "skipped"
"""Kinds of tally rows: records per encoding, rejects per reason, rows stored and skipped per table."""

DATABASE_COLUMNS = (*dict.fromkeys((*READING_COLUMNS, *REJECT_COLUMNS, ENCODING)),)
"""The decoded batch's columns a `readings_writer` needs, named as the writer names them."""

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


def _value_counts(column: pa.Array | pa.ChunkedArray) -> Iterator[tuple[str, int]]:
    for entry in pc.value_counts(column).to_pylist():
        yield str(entry["values"]), int(entry["counts"])


def readings_writer(settings: PostgresSettings) -> ArrowWriter:
    """Valid readings into `sensor_data` and rejects into `sensor_rejects`, both idempotent.

    Input: the decoded rows as DATABASE_COLUMNS (a reading is valid when `reason` is null). Tally:
    records per encoding (their element 0), rejects per reason, rows stored and skipped per table.
    """

    def write(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        counts: Counter[tuple[str, str]] = Counter()
        with DatabaseWriter(settings, application_name="sensorpipe-stream") as writer:
            for batch in batches:
                table = pa.Table.from_batches([batch])
                firsts = table.filter(pc.equal(table["element"], 0))
                counts.update({(ENCODING, label): n for label, n in _value_counts(firsts[ENCODING])})
                valid = table.filter(pc.is_null(table["reason"])).select(list(READING_COLUMNS))
                rejects = table.filter(pc.is_valid(table["reason"])).select(list(REJECT_COLUMNS))
                counts.update({(REJECTED, label): n for label, n in _value_counts(rejects["reason"])})
                if valid.num_rows:
                    result = writer.write_readings(valid)
                    counts[(STORED, "sensor_data")] += result.written
                    counts[(SKIPPED, "sensor_data")] += result.skipped
                if rejects.num_rows:
                    columns = [rejects[name].to_pylist() for name in REJECT_COLUMNS]
                    result = writer.write_rejects(zip(*columns, strict=True))
                    counts[(STORED, "sensor_rejects")] += result.written
                    counts[(SKIPPED, "sensor_rejects")] += result.skipped
        yield _tally_batch(counts)

    return write


def aggregates_writer(settings: PostgresSettings) -> ArrowWriter:
    """Upserts one-minute aggregates (a window emitted again replaces itself); tallies rows upserted."""

    def write(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        counts: Counter[tuple[str, str]] = Counter()
        with DatabaseWriter(settings, application_name="sensorpipe-stream-aggregates") as writer:
            for batch in batches:
                if batch.num_rows:
                    counts[(STORED, "sensor_data_1m")] += writer.write_aggregates(batch).written
        yield _tally_batch(counts)

    return write
