"""The database writer against a plain COPY, measured side by side on one PostgreSQL.

For batches of 1k, 10k and 100k readings (~110-byte JSON `raw_data` each, new sensor ids every batch):
1. Ceilings: a plain COPY of the same rows into an unlogged, unindexed table shaped like sensor_data,
   in text format (psycopg `write_row`, the figure docs/design.md quotes) and in the writer's binary format;
   and a binary COPY into a logged copy of sensor_data with its key, index and checks ("keyed"): what
   the table itself costs, before anything the writer adds.
2. The writer: `DatabaseWriter.write_readings` from rows (what a Spark partition iterator gives) and from
   an Arrow table, into the keyed, logged sensor_data; and a replay of batches already stored.

Runs its own PostgreSQL in a fresh home on port 25004 (a stack on the default ports keeps running):

    .venv/bin/python benchmarks/writer.py [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import psycopg
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from sensorpipe.bench.home import private_config
from sensorpipe.config import PostgresSettings, load_settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.stack import Stack
from sensorpipe.stack.postgres import Postgres
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.writer import READING_TYPES, DatabaseWriter, RawJsonb, copy_rows

BASE_PORT = 25000
SIZES = {1_000: 30, 10_000: 10, 100_000: 3}  # batch size: repetitions
T0 = datetime(2026, 11, 27, tzinfo=UTC)
COLUMNS = ", ".join(READING_COLUMNS)


def rows(n: int) -> list[tuple[Any, ...]]:
    """n readings of 100 sensors that no earlier batch used, as the stream job hands them over."""
    prefix = uuid.uuid4().hex[:8]
    out = []
    for i in range(n):
        sensor = f"{prefix}-{i % 100:03d}"
        t = T0 + timedelta(milliseconds=i)
        temperature, humidity = round(20 + (i % 70) / 10, 2), round(40 + (i % 300) / 10, 1)
        raw = {"sensor_id": sensor, "timestamp": t.timestamp(), "temperature": temperature, "humidity": humidity}
        raw["meta"] = {"fw": "1.2.3"}
        out.append((t, sensor, temperature, humidity, json.dumps(raw, separators=(",", ":")), "payload", i % 3, i))
    return out


def arrow(batch: list[tuple[Any, ...]]) -> pa.Table:
    types = [pa.timestamp("us", tz="UTC"), pa.string(), pa.float64(), pa.float64(), pa.string(), pa.string()]
    types += [pa.int32(), pa.int64()]
    columns = list(zip(*batch, strict=True))
    return pa.table({name: pa.array(columns[i], types[i]) for i, name in enumerate(READING_COLUMNS)})


def arrow_rows(n: int) -> pa.Table:
    return arrow(rows(n))


def median_rate(n: int, reps: int, prepare: Callable[[], Any], run: Callable[[Any], object]) -> float:
    """Median rows/s over `reps` runs of `run(prepare())`; only `run` is timed."""
    rates = []
    for _ in range(reps):
        data = prepare()
        began = time.perf_counter()
        run(data)
        rates.append(n / (time.perf_counter() - began))
    return statistics.median(rates)


def measure(pg: PostgresSettings) -> list[dict[str, Any]]:
    conn = psycopg.connect(pg.dsn())
    conn.adapters.register_dumper(None, RawJsonb)
    conn.execute("create unlogged table ceiling (like sensor_data including defaults)")
    # What sensor_data itself costs a plain COPY: logged, with its key, BRIN index and checks.
    conn.execute("create table keyed (like sensor_data including all)")
    conn.commit()

    def ceiling_text(batch: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cursor, cursor.copy(f"copy ceiling ({COLUMNS}) from stdin") as copy:
            for row in batch:
                copy.write_row(row)
        conn.commit()

    def ceiling_binary(batch: list[tuple[Any, ...]]) -> None:
        copy_rows(conn, psycopg.sql.Identifier("ceiling"), READING_COLUMNS, READING_TYPES, batch)
        conn.commit()

    def keyed_binary(batch: list[tuple[Any, ...]]) -> None:
        copy_rows(conn, psycopg.sql.Identifier("keyed"), READING_COLUMNS, READING_TYPES, batch)
        conn.commit()

    def fresh(n: int) -> Callable[[], list[tuple[Any, ...]]]:
        def prepare() -> list[tuple[Any, ...]]:
            conn.execute("truncate ceiling, keyed")
            conn.commit()
            return rows(n)

        return prepare

    results = []
    with DatabaseWriter(pg) as writer:
        writer.write_readings(rows(100))  # connect once, outside the measurements
        for n, reps in SIZES.items():
            stored = rows(n)
            writer.write_readings(stored)
            result = {
                "batch": n,
                "ceiling_text": median_rate(n, reps, fresh(n), ceiling_text),
                "ceiling_binary": median_rate(n, reps, fresh(n), ceiling_binary),
                "keyed_binary": median_rate(n, reps, fresh(n), keyed_binary),
                "writer_rows": median_rate(n, reps, fresh(n), writer.write_readings),
                "writer_arrow": median_rate(n, reps, partial(arrow_rows, n), writer.write_readings),
                "writer_replay": median_rate(n, reps, partial(list, stored), writer.write_readings),
            }
            results.append(result)
            Console(stderr=True).print(f"batch {n:,}: done")
    conn.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = private_config("sensorpipe-bench-writer-", BASE_PORT, lake="local")
    settings = load_settings(config_file=config)
    stack = Stack(settings)
    stack.services = [Postgres(settings)]  # the writer needs nothing else; no broker JVM competing for the cores
    try:
        stack.up()
        migrate(settings)
        results = measure(settings.postgres)
    finally:
        stack.down(purge=True)
        shutil.rmtree(config.parent, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title="database writer vs plain COPY (rows/s, median; writer rows as % of each COPY)")
    headers = ("batch", "COPY text", "COPY binary", "COPY keyed", "writer rows", "writer Arrow", "replay")
    for column in (*headers, "vs text", "vs binary", "vs keyed"):
        table.add_column(column, justify="right")
    rates = ("ceiling_text", "ceiling_binary", "keyed_binary", "writer_rows", "writer_arrow", "writer_replay")
    for r in results:
        table.add_row(
            f"{r['batch']:,}",
            *(f"{r[k]:,.0f}" for k in rates),
            *(f"{100 * r['writer_rows'] / r[k]:.0f} %" for k in ("ceiling_text", "ceiling_binary", "keyed_binary")),
        )
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
