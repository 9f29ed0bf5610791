"""The one-minute aggregates in the database (`sensor_data_1m`), kept by the writer that stores the readings.

A batch of readings is summed per sensor and minute (`minute_aggregates`) and merged into the stored
minutes (`merge_minutes`) in the transaction that stores those readings, so the aggregates never trail
the readings and hold each stored reading once: a replayed reading the database skips is not added.
Counts, sums, minima and maxima merge exactly; the averages are their sums over their counts, which is
why each measurement keeps its count and sum beside its average (a reading may lack a measurement).
`RECOMPUTE_MINUTES` computes the same from `sensor_data` itself: what a backfill uses.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from sensorpipe.contract.measurements import MEASUREMENTS

__all__ = ["RECOMPUTE_MINUTES", "merge_minutes", "minute_aggregates"]

_STATS = ("count", "sum", "min", "max")
_MINUTE_COLUMNS = ("bucket", "sensor_id", "readings", *(f"{s}_{m.name}" for m in MEASUREMENTS for s in _STATS))
"""What `minute_aggregates` returns and `merge_minutes` takes, in this order."""
_TYPES = {"bucket": "timestamptz", "sensor_id": "text", "readings": "int4"} | {
    f"{s}_{m.name}": "int4" if s == "count" else "float8" for m in MEASUREMENTS for s in _STATS
}


def minute_aggregates(readings: pa.Table) -> pa.Table:
    """Per sensor and UTC minute: readings, and each measurement's count, sum, min and max (nulls left out).

    `readings` needs `time` (a timestamp with a time zone), `sensor_id` and each measurement's column.
    A sum over no values is 0, so that sums merge by adding.
    """
    time = pc.cast(readings["time"], pa.timestamp("us", tz="UTC"))
    columns: dict[str, Any] = {
        "bucket": pc.floor_temporal(time, multiple=1, unit="minute"),
        "sensor_id": readings["sensor_id"],
    }
    columns.update({m.name: pc.cast(readings[m.name], pa.float64()) for m in MEASUREMENTS})
    grouped = (
        pa.table(columns)
        .group_by(["sensor_id", "bucket"], use_threads=False)
        .aggregate([([], "count_all"), *((m.name, stat) for m in MEASUREMENTS for stat in _STATS)])
    )
    out = {"bucket": grouped["bucket"], "sensor_id": grouped["sensor_id"], "readings": grouped["count_all"]}
    for m in MEASUREMENTS:
        out[f"count_{m.name}"] = grouped[f"{m.name}_count"]
        out[f"sum_{m.name}"] = pc.fill_null(grouped[f"{m.name}_sum"], 0.0)
        out[f"min_{m.name}"] = grouped[f"{m.name}_min"]
        out[f"max_{m.name}"] = grouped[f"{m.name}_max"]
    return pa.table(out).sort_by([("sensor_id", "ascending"), ("bucket", "ascending")])


def _merge_statement() -> sql.SQL:
    targets = ["bucket", "sensor_id", "readings"]
    values = ["bucket", "sensor_id", "readings"]
    updates = ["readings = a.readings + excluded.readings"]
    for m in MEASUREMENTS:
        count, total, low, high, avg = (f"{s}_{m.name}" for s in (*_STATS, "avg"))
        targets += [count, total, avg, low, high]
        values += [count, total, f"{total} / nullif({count}, 0)", low, high]
        updates += [
            f"{count} = a.{count} + excluded.{count}",
            f"{total} = a.{total} + excluded.{total}",
            f"{avg} = (a.{total} + excluded.{total}) / nullif(a.{count} + excluded.{count}, 0)",
            f"{low} = least(a.{low}, excluded.{low})",
            f"{high} = greatest(a.{high}, excluded.{high})",
        ]
    arrays = ", ".join(f"%s::{_TYPES[c]}[]" for c in _MINUTE_COLUMNS)
    return sql.SQL(
        f"insert into sensor_data_1m as a ({', '.join(targets)})"
        f" select {', '.join(values)} from unnest({arrays}) as m ({', '.join(_MINUTE_COLUMNS)})"
        f" on conflict (sensor_id, bucket) do update set {', '.join(updates)}, updated_at = now()"
    )


def _recompute_statement() -> sql.SQL:
    stats = {
        f"{s}_{m.name}": f"coalesce(sum({m.name}), 0)" if s == "sum" else f"{s}({m.name})"
        for m in MEASUREMENTS
        for s in (*_STATS, "avg")
    }
    return sql.SQL(
        f"insert into sensor_data_1m as a (bucket, sensor_id, readings, {', '.join(stats)})"
        " select date_bin('1 minute', time, timestamptz '2000-01-01 00:00:00+00'), sensor_id, count(*),"
        f" {', '.join(stats.values())}"
        " from sensor_data where time >= %(start)s and time < %(end)s group by 1, 2"
        " on conflict (sensor_id, bucket) do update set readings = excluded.readings,"
        f" {', '.join(f'{c} = excluded.{c}' for c in stats)}, updated_at = now()"
        f" where (a.readings, {', '.join(f'a.{c}' for c in stats)})"
        f" is distinct from (excluded.readings, {', '.join(f'excluded.{c}' for c in stats)})"
    )


_MERGE = _merge_statement()

RECOMPUTE_MINUTES = _recompute_statement()
"""Every minute of [start, end) computed from `sensor_data` and upserted; a minute whose stored values
already match is left alone, `updated_at` included. Its rowcount is the minutes that changed."""


def merge_minutes(conn: psycopg.Connection[Any], minutes: pa.Table) -> int:
    """Add `minutes` (as `minute_aggregates` gives them) to `sensor_data_1m` in the caller's transaction;
    the minutes touched. Rows are locked in (sensor, minute) order, so that two writers do not deadlock."""
    if not minutes.num_rows:
        return 0
    return conn.execute(_MERGE, [minutes[c].to_pylist() for c in _MINUTE_COLUMNS]).rowcount
