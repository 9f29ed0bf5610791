"""Lost and duplicated readings, counted from what the sinks really hold.

A reading is identified by its key (sensor_id, timestamp): the simulator never repeats a timestamp for a
sensor within a run (`simulator.readings.Fleet`), and `sensor_data` is unique on the same pair. Timestamps are
integer milliseconds at the simulator (`epoch_ms`).

What the bench knows of what was acknowledged is a count: the simulator's publisher reports
`Stats.readings_acked`, not keys, and its readings depend on the wall clock, so the key set cannot be
recomputed afterwards. The sinks count their own rows and distinct keys for the run's time window (the
database with `count(distinct (sensor_id, time))`, the lake with Arrow's group-by: a `--max` run stores
millions of readings, too many to bring into Python), and `from_counts` compares: lost = acknowledged -
distinct keys in a sink (when positive), duplicated = rows - distinct keys. A loss and an unexpected
reading in the same run would cancel out in a count; with a lossless publisher
(`Stats.lossless`: nothing dropped or unacknowledged) the acknowledged count is every reading sent.

Only valid readings of the run belong in the window: the simulator sends no malformed ones in a bench,
and rows of earlier runs fall outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def epoch_ms(moment: datetime | float) -> int:
    """A timestamp as integer epoch milliseconds: a `timestamptz` from psycopg or the lake, or epoch seconds.

    Rounded rather than truncated: 1712921712.123 as a float is 1712921712.12299990654 s.
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return round(moment.timestamp() * 1000)
    return round(moment * 1000)


@dataclass(frozen=True)
class Accounting:
    """Every acknowledged reading against what the database and the lake hold.

    `stored_*` count rows, duplicates included; `lost_*` count acknowledged readings missing from a sink;
    `duplicated_*` count extra copies (a reading stored three times is 2 duplicates).

    `unexpected` counts distinct readings stored that the broker never acknowledged to the publisher.
    This is not an error: with QoS 1 the broker may take a PUBLISH, forward it, and lose the connection
    before its PUBACK reaches the publisher, which then counts it unacknowledged (or resends it, which
    the sinks' keys make harmless). The delivery guarantee is about acknowledged readings only, so
    `unexpected` is reported but does not make `ok` false.
    """

    acknowledged: int
    stored_db: int
    stored_lake: int
    lost_db: int
    lost_lake: int
    duplicated_db: int
    duplicated_lake: int
    unexpected: int

    @property
    def ok(self) -> bool:
        """Nothing lost and nothing stored twice, in either sink: the target of every run."""
        return self.lost_db == 0 and self.lost_lake == 0 and self.duplicated_db == 0 and self.duplicated_lake == 0


def from_counts(acknowledged: int, *, db_rows: int, db_distinct: int, lake_rows: int, lake_distinct: int) -> Accounting:
    """The accounting from what each sink counted itself: its rows and its distinct keys.

    `unexpected` is a lower bound: readings stored in only one sink of the two cannot be told apart from those in
    both, so it counts what the fuller sink holds beyond the acknowledged readings.
    """
    if min(acknowledged, db_rows, db_distinct, lake_rows, lake_distinct) < 0:
        raise ValueError("counts cannot be negative")
    if db_distinct > db_rows or lake_distinct > lake_rows:
        raise ValueError("a sink cannot hold more distinct readings than rows")
    return Accounting(
        acknowledged=acknowledged,
        stored_db=db_rows,
        stored_lake=lake_rows,
        lost_db=max(0, acknowledged - db_distinct),
        lost_lake=max(0, acknowledged - lake_distinct),
        duplicated_db=db_rows - db_distinct,
        duplicated_lake=lake_rows - lake_distinct,
        unexpected=max(0, max(db_distinct, lake_distinct) - acknowledged),
    )


__all__ = ["Accounting", "epoch_ms", "from_counts"]
