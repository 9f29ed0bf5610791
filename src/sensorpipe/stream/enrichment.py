"""`sensor_metadata` for the lake's rows: read by the driver, broadcast, and re-read every `stream.metadata_refresh_s`.

The table is small (one row per sensor) and changes rarely, so the driver reads it with the read-only role
and hands Spark a local relation that every batch joins by broadcast: no JDBC round trip per micro-batch,
and an edit to the table reaches the lake within one refresh interval.
"""

from __future__ import annotations

import logging
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sensorpipe.config import Settings
from sensorpipe.storage.errors import connected

logger = logging.getLogger(__name__)

METADATA_COLUMNS = ("sensor_id", "name", "location", "kind")
SCHEMA = ", ".join(f"{name} string" for name in METADATA_COLUMNS)


def read_metadata(settings: Settings) -> list[tuple[str, str | None, str | None, str | None]]:
    with connected(settings.postgres, "reader") as conn:
        return conn.execute(f"select {', '.join(METADATA_COLUMNS)} from sensor_metadata").fetchall()


class SensorMetadata:
    """The current `sensor_metadata`, re-read when older than the refresh interval."""

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        self._spark = spark
        self._settings = settings
        self._frame: DataFrame | None = None
        self._read_at = 0.0

    def frame(self) -> DataFrame:
        if self._frame is None or time.monotonic() - self._read_at >= self._settings.stream.metadata_refresh_s:
            rows = read_metadata(self._settings)
            self._frame = self._spark.createDataFrame(rows, SCHEMA)
            self._read_at = time.monotonic()
            logger.debug("read %d rows of sensor_metadata", len(rows))
        return self._frame

    def enrich(self, readings: DataFrame) -> DataFrame:
        """`readings` with the sensor's name, location and kind (null for a sensor not in the table)."""
        return readings.join(F.broadcast(self.frame()), "sensor_id", "left")
