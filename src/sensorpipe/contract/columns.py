"""The columns of the database tables the stream job fills (storage/migrations create them).

`sensor_data` has one column per declared measurement (contract/measurements.py).
"""

from __future__ import annotations

from sensorpipe.contract.measurements import MEASUREMENTS

__all__ = ["AGGREGATE_COLUMNS", "READING_COLUMNS", "REJECT_COLUMNS"]

READING_COLUMNS = (
    "time",
    "sensor_id",
    *(measurement.name for measurement in MEASUREMENTS),
    "raw_data",
    "time_source",
    "kafka_partition",
    "kafka_offset",
)
"""`sensor_data`, as the writer takes a reading."""
REJECT_COLUMNS = ("reason", "detail", "payload", "kafka_topic", "kafka_partition", "kafka_offset", "element")
"""`sensor_rejects`, as the writer takes a reject."""
AGGREGATE_COLUMNS = (
    "bucket",
    "sensor_id",
    "readings",
    *(f"{stat}_{measurement.name}" for measurement in MEASUREMENTS for stat in ("avg", "min", "max")),
)
"""`sensor_data_1m`: one-minute aggregates per sensor."""
