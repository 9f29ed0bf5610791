"""Lost and duplicated readings, counted from what the sinks really hold.

A reading is identified by its key (sensor_id, timestamp in epoch milliseconds): the simulator never repeats
a timestamp for a sensor within a run (`ingest.readings.Fleet`), and `sensor_data` is unique on the same
pair. Timestamps are integer milliseconds because that is the simulator's precision; a runner converts the
database's `timestamptz` and the lake's timestamp column with `epoch_ms`.

What a runner can know about what was acknowledged: the simulator's publisher reports counts
(`Stats.readings_acked`), not keys, and its readings depend on the wall clock, so the key set cannot be
recomputed from the seed afterwards. Two forms are therefore accepted:

- the exact key set, when the runner records each reading's key as its PUBACK arrives: losses are
  named and readings stored without an acknowledgement are told apart;
- a count, when it only has the publisher's `readings_acked`: lost = acknowledged - distinct stored keys
  (when positive), which cannot tell a loss from an unexpected reading if both happen in one run, so the
  result says `exact=False`. With a lossless publisher (`Stats.lossless`: nothing dropped or unacked)
  the count is also every reading sent, and the count form is exact in practice.

Either way, only valid readings of this run belong in the inputs: malformed ones go to the dead-letter
path by design, and rows of earlier runs must be filtered out by the runner's query.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime

Key = tuple[str, int]
"""(sensor_id, reading timestamp in epoch milliseconds)."""


def epoch_ms(moment: datetime | float) -> int:
    """A timestamp as integer epoch milliseconds: a `timestamptz` from psycopg or the lake, or epoch seconds.

    Rounded rather than truncated: 1712921712.123 as a float is 1712921712.12299990654 s.
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return round(moment.timestamp() * 1000)
    return round(moment * 1000)


def tally(keys: Iterable[Key] | Mapping[Key, int]) -> Counter[Key]:
    """Copies per key: from a list of keys (a repeated key is a duplicate) or from counted rows.

    The lake is read as a list (Parquet files can hold the same reading twice); the database cannot hold a
    key twice while its primary key exists, so it is read with `select sensor_id, time, count(*) … group
    by 1, 2`, which still shows duplicates should the table ever be created without that key.
    """
    if isinstance(keys, Mapping):
        return Counter({k: n for k, n in keys.items() if n > 0})
    return Counter(keys)


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
    exact: bool = True
    """False when only a count of acknowledged readings was known (see the module docstring)."""

    @property
    def ok(self) -> bool:
        """Nothing lost and nothing stored twice, in either sink: the target of every run."""
        return self.lost_db == 0 and self.lost_lake == 0 and self.duplicated_db == 0 and self.duplicated_lake == 0


def account(
    acknowledged: Set[Key] | int,
    db: Iterable[Key] | Mapping[Key, int],
    lake: Iterable[Key] | Mapping[Key, int],
) -> Accounting:
    """Compare acknowledged readings (a key set, or only their count) with the database's and the lake's keys."""
    in_db, in_lake = tally(db), tally(lake)
    duplicated_db = sum(n - 1 for n in in_db.values())
    duplicated_lake = sum(n - 1 for n in in_lake.values())
    if isinstance(acknowledged, int):
        if acknowledged < 0:
            raise ValueError("the acknowledged count cannot be negative")
        stored = len(in_db.keys() | in_lake.keys())
        return Accounting(
            acknowledged=acknowledged,
            stored_db=in_db.total(),
            stored_lake=in_lake.total(),
            lost_db=max(0, acknowledged - len(in_db)),
            lost_lake=max(0, acknowledged - len(in_lake)),
            duplicated_db=duplicated_db,
            duplicated_lake=duplicated_lake,
            unexpected=max(0, stored - acknowledged),
            exact=False,
        )
    return Accounting(
        acknowledged=len(acknowledged),
        stored_db=in_db.total(),
        stored_lake=in_lake.total(),
        lost_db=sum(1 for k in acknowledged if k not in in_db),
        lost_lake=sum(1 for k in acknowledged if k not in in_lake),
        duplicated_db=duplicated_db,
        duplicated_lake=duplicated_lake,
        unexpected=len((in_db.keys() | in_lake.keys()) - acknowledged),
    )


def from_counts(acknowledged: int, *, db_rows: int, db_distinct: int, lake_rows: int, lake_distinct: int) -> Accounting:
    """The count form from counts the sinks computed themselves: rows and distinct keys in each.

    For runs too big to bring every key into Python (a `--max` search stores millions of readings): the
    database counts with `count(distinct (sensor_id, time))`, the lake with Arrow's group-by. `unexpected`
    is then a lower bound: readings stored in only one sink of the two cannot be told apart from those in
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
        exact=False,
    )


__all__ = ["Accounting", "Key", "account", "epoch_ms", "from_counts", "tally"]
