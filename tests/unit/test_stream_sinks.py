"""What the executors' partition writers report back (tallies the driver sums into the job's metrics), and
the dead letters they publish."""

from __future__ import annotations

import base64
import json
from collections import Counter

from sensorpipe.storage.writer import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.stream.dead_letters import dead_letter
from sensorpipe.stream.sinks import DATABASE_COLUMNS, ENCODING, REJECTED, SKIPPED, STORED, Tally, TallyParam


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


def test_the_tally_accumulator_sums_what_partitions_add() -> None:
    param = TallyParam()
    total = param.zero(Counter())
    param.addInPlace(total, Counter({(ENCODING, "raw_json"): 3, (STORED, "sensor_data"): 150}))
    param.addInPlace(total, Counter({(ENCODING, "raw_json"): 1, (REJECTED, "empty"): 1}))
    tally = Tally(total)
    assert tally.of(ENCODING) == {"raw_json": 4}
    assert (tally.rows("sensor_data"), tally.of(REJECTED)) == (150, {"empty": 1})


def test_a_dead_letter_is_keyed_by_its_kafka_coordinates_and_carries_the_payload_in_base64() -> None:
    reject = {
        "reason": "out_of_range",
        "detail": "temperature 999",
        "payload": b"\x00not text",
        "kafka_topic": "sensor-data",
        "kafka_partition": 2,
        "kafka_offset": 41,
        "element": 3,
    }
    key, value = dead_letter(reject)
    assert key == "sensor-data:2:41:3"
    assert json.loads(value) == {
        **{name: reject[name] for name in ("reason", "detail", "kafka_topic", "kafka_partition", "kafka_offset")},
        "element": 3,
        "payload_base64": base64.b64encode(b"\x00not text").decode(),
    }
