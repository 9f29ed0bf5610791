"""What the executors' partition writers report back: tallies the driver sums into the job's metrics."""

from __future__ import annotations

from sensorpipe.storage.writer import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.stream.sinks import DATABASE_COLUMNS, ENCODING, REJECTED, SKIPPED, STORED, Tally


def test_partition_tallies_sum_by_kind_and_label() -> None:
    tally = Tally().add([(ENCODING, "raw_json", 3), (REJECTED, "empty", 1), (STORED, "sensor_data", 40)])
    tally.add([(ENCODING, "raw_json", 2), (ENCODING, "base64_json", 1), (SKIPPED, "sensor_data", 10)])
    assert tally.of(ENCODING) == {"raw_json": 5, "base64_json": 1}
    assert tally.of(REJECTED) == {"empty": 1}
    assert tally.rows("sensor_data") == 50, "rows skipped as stored before (a replay) were given to the table too"
    assert tally.rows("sensor_rejects") == 0


def test_the_database_pass_carries_every_column_of_both_tables_once() -> None:
    assert set(DATABASE_COLUMNS) == {*READING_COLUMNS, *REJECT_COLUMNS, ENCODING}
    assert len(DATABASE_COLUMNS) == len(set(DATABASE_COLUMNS))
