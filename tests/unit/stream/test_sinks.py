"""What the executors' partition writers report back (tallies the driver sums into the job's metrics), and
the dead letters they publish."""

from __future__ import annotations

import base64
import json
from collections import Counter

import numpy as np
import pytest

from sensorpipe.contract.columns import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.stream.dead_letters import dead_letter
from sensorpipe.stream.decode import DECODED_COLUMNS, ENCODING
from sensorpipe.stream.monitoring import READING_LATENCY_BUCKETS_S, StreamMetrics
from sensorpipe.stream.sinks import LATENCY, REJECTED, SKIPPED, STORED, Tally, latency_buckets


def test_partition_tallies_sum_by_kind_and_label() -> None:
    tally = Tally().add([(ENCODING, "raw_json", 3), (REJECTED, "empty", 1), (STORED, "sensor_data", 40)])
    tally.add([(ENCODING, "raw_json", 2), (ENCODING, "base64_json", 1), (SKIPPED, "sensor_data", 10)])
    assert tally.of(ENCODING) == {"raw_json": 5, "base64_json": 1}
    assert tally.of(REJECTED) == {"empty": 1}
    assert tally.rows("sensor_data") == 50, "rows skipped as stored before (a replay) were given to the table too"
    assert tally.rows("sensor_rejects") == 0


def test_the_decode_gives_every_column_of_both_tables_once() -> None:
    assert set(DECODED_COLUMNS) == {*READING_COLUMNS, *REJECT_COLUMNS, ENCODING}
    assert len(DECODED_COLUMNS) == len(set(DECODED_COLUMNS))


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


def test_latencies_are_bucketed_per_reading_and_exported_as_a_cumulative_histogram() -> None:
    now = 1_800_000_000.0
    ages_s = [0.1, 0.2, 1.2, 4_000.0, -3.0]  # the last: a sensor clock ahead of ours counts as no delay
    times_us = np.array([round((now - age) * 1e6) for age in ages_s], dtype=np.int64)
    counts = latency_buckets(times_us, now)
    assert counts == Counter(
        {
            (LATENCY, "0"): 3,
            (LATENCY, "4"): 1,
            (LATENCY, str(len(READING_LATENCY_BUCKETS_S))): 1,
            (LATENCY, "sum_ms"): 4_001_500,
        }
    )
    metrics = StreamMetrics()
    metrics.count_latencies(Tally().add([(k, label, n) for (k, label), n in counts.items()]).of(LATENCY))
    metrics.count_latencies({"0": 1, "sum_ms": 100})
    value = metrics.registry.get_sample_value
    assert value("sensorpipe_stream_reading_latency_seconds_bucket", {"le": "0.25"}) == 4
    assert value("sensorpipe_stream_reading_latency_seconds_bucket", {"le": "1.5"}) == 5
    assert value("sensorpipe_stream_reading_latency_seconds_bucket", {"le": "3600.0"}) == 5
    assert value("sensorpipe_stream_reading_latency_seconds_bucket", {"le": "+Inf"}) == 6
    assert value("sensorpipe_stream_reading_latency_seconds_count") == 6
    assert value("sensorpipe_stream_reading_latency_seconds_sum") == pytest.approx(4_001.6)
