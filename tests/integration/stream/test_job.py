"""The stream job end to end on the real stack: Kafka → Spark → PostgreSQL and the S3 lake, exactly once.

The job runs in this process on the shared SparkSession (`run_job`, what `sensorpipe stream` runs);
the reset test goes through the command line, as a user does.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa
import pytest

from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.lake import AGG_1M, RAW, dataset_uri, read_dataset
from sensorpipe.storage.lake_query import query
from sensorpipe.stream.checkpoints import checkpoint_filesystem, checkpoint_uri, checkpoints
from tests.ingest_support import read_topic
from tests.stream_support import T0, Headers, Lane, encodings, produce, reading, run_stream, stored_keys
from tests.support import sensorpipe

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def invalid_record(tag: str, i: int) -> tuple[bytes, str]:
    """Invalid record number `i`, of one of eight kinds: (payload, the reason the job must give)."""
    bad = reading(f"{tag}-bad", i)
    kinds: list[tuple[bytes, str]] = [
        (b"", "empty"),
        (b'{"truncated": %d' % i, "not_json"),
        (f"plain words {i}".encode(), "undecodable"),
        (json.dumps({**bad, "humidity": "wet"}).encode(), "wrong_type"),
        (json.dumps({**bad, "temperature": 999}).encode(), "out_of_range"),
        (json.dumps({"sensor_id": f"{tag}-bad", "seq": i}).encode(), "missing_values"),
        (json.dumps({**bad, "timestamp": f"day {i}"}).encode(), "bad_timestamp"),
        (str(i).encode(), "not_an_object"),
    ]
    return kinds[i % len(kinds)]


def test_every_encoding_lands_once_in_database_and_lake_invalid_ones_are_rejected_and_reset_rereads_it_all(
    stack_config: Path, migrated: Settings, lane: Lane, spark: SparkSession
) -> None:
    per_encoding, invalid_count = 1_000, 500
    values: list[bytes] = []
    headers: list[Headers] = []
    expected: set[tuple[str, datetime]] = set()
    for label in ("raw_json", "base64_json", "quoted_base64", "envelope_base64"):
        sensor = lane.sensor(label)
        for index in range(per_encoding):
            values.append(encodings(reading(sensor, index))[label])
            headers.append([("mqtt_topic", f"sensors/{sensor}/data".encode())])
            expected.add((sensor, T0 + timedelta(seconds=index)))
    # A gateway batch with one bad element: the good one lands, the bad one is rejected on its own.
    gateway = [reading(lane.sensor("gw-a"), 1), {**reading(lane.sensor("gw-b"), 1), "temperature": 999}]
    values.append(json.dumps(gateway).encode())
    headers.append([("mqtt_topic", f"sensors/{lane.tag}-gw/data".encode())])
    expected.add((lane.sensor("gw-a"), T0 + timedelta(seconds=1)))
    # Legacy payloads (topic sensors/data, no sensor_id) land under the default id, at times of this test's own.
    legacy_base = T0 + timedelta(days=1 + int(lane.tag, 16) % 100_000)
    legacy = [legacy_base + timedelta(seconds=i) for i in range(20)]
    for moment in legacy:
        values.append(json.dumps({"timestamp": moment.timestamp(), "temperature": 18.0}).encode())
        headers.append([("mqtt_topic", b"sensors/data")])
    invalid = [invalid_record(lane.tag, i) for i in range(invalid_count)]
    # A lone surrogate escape: JSON that Spark's parser and PostgreSQL's jsonb refuse, alone or in a batch.
    lone = {**reading(f"{lane.tag}-bad", 0), "note": "\ud800 \u00e9"}
    invalid += [(json.dumps(payload).encode(), "not_json") for payload in (lone, [lone, reading(lane.tag, 0)])]
    values += [payload for payload, _ in invalid]
    headers += [[("mqtt_topic", f"sensors/{lane.tag}-bad/data".encode())] for _ in invalid]
    with psycopg.connect(migrated.postgres.dsn(), autocommit=True) as conn:
        conn.execute(
            "insert into sensor_metadata (sensor_id, name, location, kind) values (%s, 'door', 'hall 1', 'thermo')",
            (lane.sensor("raw_json"),),
        )
    produce(migrated, lane.topic, values, headers)

    totals = run_stream(spark, lane)

    assert set(stored_keys(migrated, lane.tag)) == expected
    assert len(stored_keys(migrated, lane.tag)) == len(expected)
    default_id = migrated.readings.default_sensor_id
    with psycopg.connect(migrated.postgres.dsn(), autocommit=True) as conn:
        legacy_rows = conn.execute(
            "select time from sensor_data where sensor_id = %s and time = any(%s) order by time", (default_id, legacy)
        ).fetchall()
        rejects = conn.execute(
            "select payload, reason, element from sensor_rejects where kafka_topic = %s", (lane.topic,)
        ).fetchall()
    assert [r[0] for r in legacy_rows] == legacy
    by_element = {e: [(bytes(p), r) for p, r, el in rejects if el == e] for e in (0, 1)}
    assert Counter(by_element[0]) == Counter(invalid)
    ((element_payload, element_reason),) = by_element[1]  # the gateway batch's bad element, and only it
    assert (json.loads(element_payload), element_reason) == (gateway[1], "out_of_range")

    encoded = {"raw_json": per_encoding + 1 + len(legacy), "base64_json": per_encoding}
    encoded |= {"quoted_base64": per_encoding, "envelope_base64_json": per_encoding}
    for _, reason in invalid:
        encoding = "unknown" if reason == "empty" else "base64_json" if reason == "undecodable" else "raw_json"
        encoded[encoding] = encoded.get(encoding, 0) + 1
    assert totals["encodings"] == encoded
    assert totals["rejects"] == dict(Counter(reason for _, reason, _ in rejects))
    sink_rows = totals["sink_rows"]
    assert (sink_rows["database"], sink_rows["lake"]) == (len(expected) + len(legacy), len(expected) + len(legacy))
    assert sink_rows["aggregates"] >= len({(sensor, moment.replace(second=0)) for sensor, moment in expected})

    lake = read_dataset(lane.settings, RAW, columns=["sensor_id", "time", "location", "kind"]).to_pylist()
    ours = [r for r in lake if r["sensor_id"].startswith(lane.tag)]
    assert sorted((r["sensor_id"], r["time"]) for r in ours) == sorted(expected)
    enriched = {(r["location"], r["kind"]) for r in ours if r["sensor_id"] == lane.sensor("raw_json")}
    assert enriched == {("hall 1", "thermo")}
    assert {(r["location"], r["kind"]) for r in ours if r["sensor_id"] != lane.sensor("raw_json")} == {(None, None)}
    assert sorted(r["time"] for r in lake if r["sensor_id"] == default_id and r["time"] in set(legacy)) == legacy
    # Spark (Delta's own reader) sees the snapshot delta-rs does, and `lake query` agrees with sensor_data.
    spark_rows = spark.read.format("delta").load(dataset_uri(lane.settings, RAW))
    by_spark = spark_rows.selectExpr("sensor_id", "unix_micros(time) as us").collect()
    by_delta_rs = read_dataset(lane.settings, RAW, columns=["sensor_id", "time"])
    pairs = zip(by_delta_rs["sensor_id"].to_pylist(), by_delta_rs["time"].cast(pa.int64()).to_pylist(), strict=True)
    assert sorted((r.sensor_id, r.us) for r in by_spark) == sorted(pairs)
    per_sensor = f"select sensor_id, count(*) as n, min(time) as first from {{}} where sensor_id like '{lane.tag}-%'"
    answer = query(lane.settings, per_sensor.format("raw") + " group by 1 order by 1").to_pylist()
    with psycopg.connect(migrated.postgres.dsn(), autocommit=True) as conn:
        stored = conn.execute(per_sensor.format("sensor_data") + " group by 1 order by 1").fetchall()
    assert [(r["sensor_id"], r["n"], r["first"]) for r in answer] == stored

    records = read_topic(migrated, f"{lane.topic}-dlq", len(rejects))
    dead_letters = [json.loads(r.value) for r in records]
    assert Counter(d["reason"] for d in dead_letters) == Counter(r[1] for r in rejects)
    assert {d["kafka_topic"] for d in dead_letters} == {lane.topic}
    keys = {f"{d['kafka_topic']}:{d['kafka_partition']}:{d['kafka_offset']}:{d['element']}" for d in dead_letters}
    assert {r.key.decode() for r in records if r.key} == keys

    # `--reset` asks first, and deletes nothing when refused.
    refused = sensorpipe(*lane.flags(), "stream", "--reset", "--available-now", config=stack_config, answer="n\n")
    assert refused.returncode == 1
    assert "delete 2 checkpoint(s)" in refused.stdout and "and empty the lake's agg_1m?" in refused.stdout
    assert "nothing deleted" in refused.stdout + refused.stderr
    assert all(c.exists for c in checkpoints(lane.settings)), "a refused reset deletes nothing"
    # Confirmed, it deletes the checkpoints and the job reads Kafka again from its earliest offset: the
    # database keeps one row per reading, and the lake's raw, which records the offsets it holds, too.
    reset = sensorpipe(
        *lane.flags(), "stream", "--reset", "--yes", "--available-now", config=stack_config, timeout_s=600
    )
    assert reset.returncode == 0, reset.stdout + reset.stderr[-3000:]
    assert "Traceback" not in reset.stderr
    assert "adaptive.enabled is not supported in streaming" not in reset.stderr, "a warning per query start"
    for checkpoint in checkpoints(lane.settings):
        assert f"deleted {checkpoint.uri}" in reset.stdout
    assert reset.stderr.count("(stream --reset)") >= len(checkpoints(lane.settings)), "each deletion is logged"
    assert sorted(stored_keys(migrated, lane.tag)) == sorted(expected)
    lake = read_dataset(lane.settings, RAW, columns=["sensor_id", "time"]).to_pylist()
    assert sorted((r["sensor_id"], r["time"]) for r in lake if r["sensor_id"].startswith(lane.tag)) == sorted(expected)
    assert sorted(r["time"] for r in lake if r["sensor_id"] == default_id and r["time"] in set(legacy)) == legacy


def test_late_readings_update_their_minute_in_the_database_and_the_lake_takes_final_minutes(
    migrated: Settings, lane: Lane, spark: SparkSession
) -> None:
    sensor = lane.sensor("late")

    def at(minute: int, second: int) -> bytes:
        moment = T0 + timedelta(minutes=minute, seconds=second)
        return json.dumps({"sensor_id": sensor, "timestamp": moment.timestamp(), "humidity": 50.0}).encode()

    produce(migrated, lane.topic, [at(0, 0), at(0, 1), at(0, 2), at(4, 10)])
    run_stream(spark, lane)  # the watermark is now 10:04:10 minus 2 minutes = 10:02:10
    with psycopg.connect(migrated.postgres.dsn(), autocommit=True) as conn:
        first = conn.execute("select bucket, readings from sensor_data_1m where sensor_id = %s order by 1", (sensor,))
        assert first.fetchall() == [(T0, 3), (T0 + timedelta(minutes=4), 1)]
    produce(migrated, lane.topic, [at(4, 5), at(0, 30)])  # late within the watermark, and beyond it
    totals = run_stream(spark, lane)

    with psycopg.connect(migrated.postgres.dsn(), autocommit=True) as conn:
        minutes = conn.execute(
            "select bucket, readings from sensor_data_1m where sensor_id = %s order by bucket", (sensor,)
        ).fetchall()
        readings = conn.execute("select count(*) from sensor_data where sensor_id = %s", (sensor,)).fetchone()
    assert minutes == [(T0, 4), (T0 + timedelta(minutes=4), 2)], "every stored reading is in its minute, however late"
    assert readings == (6,)
    assert totals["dropped_late"].get("aggregates_lake", 0) >= 1
    # The lake's agg_1m takes a minute once, final, when the watermark passed it: 10:00, not yet 10:04,
    # and without the reading that came after its minute was final.
    lake = read_dataset(lane.settings, AGG_1M, columns=["sensor_id", "bucket", "readings"]).to_pylist()
    assert [(r["bucket"], r["readings"]) for r in lake if r["sensor_id"] == sensor] == [(T0, 3)]


def test_a_checkpoint_of_another_query_shape_stops_the_job_with_the_two_ways_out(
    migrated: Settings, lane: Lane, spark: SparkSession
) -> None:
    # What Spark keeps after one batch of a query with two sources (an older job version, say).
    uri = checkpoint_uri(lane.settings, "aggregates_lake")
    filesystem, path = checkpoint_filesystem(lane.settings, uri)
    metadata = {"batchWatermarkMs": 0, "batchTimestampMs": 0, "conf": {}}
    files = {
        "metadata": json.dumps({"id": str(uuid.uuid4())}),
        "offsets/0": "\n".join(["v1", json.dumps(metadata), '{"logOffset":0}', '{"logOffset":0}']),
        "commits/0": 'v1\n{"nextBatchWatermarkMs":0}',
    }
    for name, text in files.items():
        filesystem.create_dir(f"{path}/{name}".rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(f"{path}/{name}") as out:
            out.write(text.encode())
    produce(migrated, lane.topic, [json.dumps(reading(lane.sensor("shape"), 0)).encode()])

    with pytest.raises(SensorpipeError) as failed:
        run_stream(spark, lane)

    message = str(failed.value)
    assert (
        f"the checkpoint of query aggregates_lake at {uri} was written by a different version of the query" in message
    )
    assert "Either run the version that wrote it, or start over with `sensorpipe stream --reset`" in message
