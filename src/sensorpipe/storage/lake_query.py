"""Ad-hoc SQL on the lake without Spark: DuckDB over the tables' current snapshots (`sensorpipe lake query`).

Each table is handed to DuckDB as the Arrow dataset of its committed files, under its own name (`raw`,
`agg_1m`). DuckDB pushes column choices and filters down into the scan, so a filter on `date` (the
partition column) opens only that day's files, and one on `time` or `sensor_id` skips files and row
groups by their statistics.
"""

from __future__ import annotations

import pyarrow as pa

from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.lake import DATASETS, SCHEMAS, delta_table, explained


class QueryError(SensorpipeError):
    """DuckDB refused the SQL; the message is DuckDB's own, which names the problem."""


def query(settings: Settings, sql: str) -> pa.Table:
    """The result of `sql` over the lake's tables, as Arrow."""
    import duckdb

    connection = duckdb.connect()
    try:
        with explained(settings):
            for dataset in DATASETS:
                table = delta_table(settings, dataset)
                source = table.to_pyarrow_dataset() if table is not None else SCHEMAS[dataset].empty_table()
                connection.register(dataset, source)
            try:
                return _result(connection.sql(sql))
            except duckdb.Error as e:
                raise QueryError(f"{e} (the lake's tables: {', '.join(DATASETS)})") from e
    finally:
        connection.close()


def _result(relation: object) -> pa.Table:
    """A statement without rows (`SET`, `CREATE VIEW`) gives an empty table."""
    return pa.table({}) if relation is None else relation.to_arrow_table()  # type: ignore[attr-defined]
