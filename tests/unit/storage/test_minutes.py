"""Summing readings per sensor and minute, the half of the merge that needs no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa

from sensorpipe.storage.minutes import minute_aggregates

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_readings_are_summed_per_sensor_and_utc_minute_with_missing_values_left_out() -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    times = [T0, T0 + timedelta(seconds=59.999), T0 + timedelta(seconds=60), T0 + timedelta(seconds=1)]
    readings = pa.table(
        {
            "time": pa.array([t.astimezone(kolkata) for t in times], pa.timestamp("us", tz="+05:30")),
            "sensor_id": ["b", "b", "b", "a"],
            "temperature": [1.0, 3.0, 5.0, None],
            "humidity": [None, 40.0, None, None],
        }
    )
    minutes = minute_aggregates(readings).to_pylist()
    assert minutes == [
        {
            "bucket": T0,
            "sensor_id": "a",
            "readings": 1,
            **{"count_temperature": 0, "sum_temperature": 0.0, "min_temperature": None, "max_temperature": None},
            **{"count_humidity": 0, "sum_humidity": 0.0, "min_humidity": None, "max_humidity": None},
        },
        {
            "bucket": T0,
            "sensor_id": "b",
            "readings": 2,
            **{"count_temperature": 2, "sum_temperature": 4.0, "min_temperature": 1.0, "max_temperature": 3.0},
            **{"count_humidity": 1, "sum_humidity": 40.0, "min_humidity": 40.0, "max_humidity": 40.0},
        },
        {
            "bucket": T0 + timedelta(minutes=1),
            "sensor_id": "b",
            "readings": 1,
            **{"count_temperature": 1, "sum_temperature": 5.0, "min_temperature": 5.0, "max_temperature": 5.0},
            **{"count_humidity": 0, "sum_humidity": 0.0, "min_humidity": None, "max_humidity": None},
        },
    ]


def test_no_readings_no_minutes() -> None:
    empty = pa.table(
        {
            "time": pa.array([], pa.timestamp("us", tz="UTC")),
            "sensor_id": pa.array([], pa.string()),
            "temperature": pa.array([], pa.float64()),
            "humidity": pa.array([], pa.float64()),
        }
    )
    assert minute_aggregates(empty).num_rows == 0
