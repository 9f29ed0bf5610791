"""The ceilings' pure parts: rate arithmetic, the readings they use, and the bridge-topic guard."""

from __future__ import annotations

import json
import math
from datetime import UTC

import pyarrow as pa
import pytest

from sensorpipe.bench.ceilings import (
    BENCH_PREFIX,
    CeilingError,
    bench_messages,
    bench_topic_pattern,
    database_rows,
    lake_table,
    measure,
    readings_per_s,
)
from sensorpipe.config import Settings
from sensorpipe.contract.columns import READING_COLUMNS
from sensorpipe.storage.lake import PARTITION_SCHEMA
from sensorpipe.storage.writer import reading_rows


def test_rate_is_events_times_batch_over_seconds() -> None:
    assert readings_per_s(100, 2.0) == 50.0
    assert readings_per_s(100, 2.0, batch=50) == 2500.0


@pytest.mark.parametrize(("events", "seconds"), [(0, 1.0), (5, 0.0), (5, -1.0), (5, math.inf), (5, math.nan)])
def test_rate_refuses_meaningless_figures(events: int, seconds: float) -> None:
    with pytest.raises(CeilingError):
        readings_per_s(events, seconds)


def test_messages_are_the_simulators_readings_on_bench_topics() -> None:
    topic = bench_topic_pattern("abc")
    singles = bench_messages(topic, 1, count=3)
    assert [m.topic for m in singles] == [f"{BENCH_PREFIX}abc/sensor-00{i}/data" for i in (1, 2, 3)]
    assert json.loads(singles[0].payload)["sensor_id"] == "sensor-001"
    batches = bench_messages(topic, 5, count=2)
    assert all(m.topic == f"{BENCH_PREFIX}abc/gw-01/data" and m.malformed is None for m in batches)
    assert len(json.loads(batches[0].payload)) == 5


def test_database_rows_pass_the_writers_checks_with_unique_keys() -> None:
    rows = database_rows(1000, partitions=3)
    assert reading_rows(rows) == rows
    assert len({(r[1], r[0]) for r in rows}) == 1000
    assert rows[0][0].tzinfo is UTC
    assert {r[6] for r in rows} == {0, 1, 2}
    assert json.loads(rows[0][4])["sensor_id"] == rows[0][1]


def test_lake_table_has_the_raw_columns_and_partitions() -> None:
    table = lake_table(database_rows(10))
    assert table.num_rows == 10
    assert table.schema.names[: len(READING_COLUMNS)] == list(READING_COLUMNS)
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert [table.schema.field(name).type for name in PARTITION_SCHEMA.names] == list(PARTITION_SCHEMA.types)


def test_a_bridge_subscription_covering_the_bench_topics_is_refused_before_any_service() -> None:
    with pytest.raises(CeilingError, match="would forward bench messages"):
        measure(Settings(mqtt={"topic": "+/+/data"}), [1], duration_s=1)
