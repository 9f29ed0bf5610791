"""The declared measurements and the columns they make, as the database declares them."""

from __future__ import annotations

import re
from pathlib import Path

import sensorpipe.storage
from sensorpipe.contract.columns import AGGREGATE_COLUMNS, READING_COLUMNS
from sensorpipe.contract.measurements import HUMIDITY, MEASUREMENTS, TEMPERATURE
from sensorpipe.storage.writer import READING_TYPES

MIGRATION = Path(sensorpipe.storage.__file__).parent / "migrations" / "0001_sensor_tables.sql"


def test_the_defaults_are_temperature_in_celsius_and_humidity_in_percent() -> None:
    assert MEASUREMENTS == (TEMPERATURE, HUMIDITY)
    assert (TEMPERATURE.unit, TEMPERATURE.low, TEMPERATURE.high) == ("°C", -80.0, 150.0)
    assert (HUMIDITY.unit, HUMIDITY.low, HUMIDITY.high) == ("%", 0.0, 100.0)
    assert TEMPERATURE.within(-80.0) and TEMPERATURE.within(150.0) and not TEMPERATURE.within(150.000001)
    assert TEMPERATURE.range_text == "[-80, 150]"


def test_the_database_checks_the_same_ranges() -> None:
    sql = MIGRATION.read_text()
    for measurement in MEASUREMENTS:
        found = re.search(rf"check \({measurement.name} between (-?[\d.]+) and (-?[\d.]+)\)", sql)
        assert found, measurement.name
        assert (float(found[1]), float(found[2])) == (measurement.low, measurement.high)


def test_each_measurement_has_its_columns() -> None:
    assert READING_COLUMNS == (
        "time",
        "sensor_id",
        "temperature",
        "humidity",
        "raw_data",
        "time_source",
        "kafka_partition",
        "kafka_offset",
    )
    assert len(READING_TYPES) == len(READING_COLUMNS)
    assert AGGREGATE_COLUMNS[3:] == (
        "avg_temperature",
        "min_temperature",
        "max_temperature",
        "avg_humidity",
        "min_humidity",
        "max_humidity",
    )
