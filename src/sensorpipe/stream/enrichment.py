"""`sensor_metadata` for the lake's rows: read by the driver at each lake commit (stream/lake_commit.py).

The table is small (one row per sensor), so each commit reads it afresh with the read-only role: an edit
to the table reaches the lake with the next commit.
"""

from __future__ import annotations

from sensorpipe.config import Settings
from sensorpipe.storage.errors import connected

METADATA_COLUMNS = ("sensor_id", "name", "location", "kind")


def read_metadata(settings: Settings) -> list[tuple[str, str | None, str | None, str | None]]:
    with connected(settings.postgres, "reader") as conn:
        return conn.execute(f"select {', '.join(METADATA_COLUMNS)} from sensor_metadata").fetchall()
