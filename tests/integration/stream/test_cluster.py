"""`sensorpipe stream` unchanged on a Spark standalone cluster: a Master and a Worker in JVMs of their own.

The driver is the CLI process; the executor is a JVM the worker starts, so decoding and writing run
outside the driver's process. Readings, rejects and checkpoints must come out as with `local[*]`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from sensorpipe.config import Settings
from sensorpipe.storage.lake import RAW, read_dataset
from tests.spark_cluster import SparkCluster, standalone_cluster
from tests.stream_support import T0, Lane, encodings, produce, reading, stored_keys
from tests.support import sensorpipe

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[SparkCluster]:
    with standalone_cluster(cores=1, memory="1g") as running:
        yield running


def app_ids(cluster: SparkCluster, name: str) -> set[str]:
    return {str(a["id"]) for a in cluster.state().get("completedapps", []) if a.get("name") == name}


def new_app(cluster: SparkCluster, name: str, before: set[str]) -> str:
    """The id of the one application called `name` that completed since `before` (it moves to the completed
    list shortly after its driver stops)."""
    deadline = time.monotonic() + 60
    while not (new := app_ids(cluster, name) - before):
        assert time.monotonic() < deadline, f"no new completed application {name}: {cluster.state()}"
        time.sleep(0.5)
    assert len(new) == 1, new
    return new.pop()


@pytest.mark.parametrize("jars_on_workers", [False, True], ids=["jars-shipped", "jars-on-workers"])
def test_the_stream_job_runs_unchanged_on_a_standalone_cluster(
    stack_config: Path, migrated: Settings, cluster: SparkCluster, jars_on_workers: bool
) -> None:
    """Shipped: the executor fetches the jar set from the driver; on workers: it finds them on its class path."""
    lane = Lane(migrated, checkpoints_beside_lake=True)
    jars = ("--set", f"spark.jars_on_workers={str(jars_on_workers).lower()}")
    before = app_ids(cluster, "sensorpipe-stream")
    values: list[bytes] = []
    expected = set()
    for label in ("raw_json", "envelope_base64"):
        sensor = lane.sensor(label)
        for index in range(150):
            values.append(encodings(reading(sensor, index))[label])
            expected.add((sensor, T0 + timedelta(seconds=index)))
    invalid = [
        b"plain words",
        b"",
        b'{"truncated": ',
        json.dumps({**reading(lane.sensor("bad"), 1), "humidity": "wet"}).encode(),
    ]
    produce(migrated, lane.topic, values + invalid)

    result = sensorpipe(
        *lane.flags(), *jars, "stream", "--master", cluster.url, "--available-now", config=stack_config, timeout_s=600
    )

    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    stored = stored_keys(migrated, lane.tag)
    assert len(stored) == len(expected) and set(stored) == expected
    lake = read_dataset(lane.settings, RAW, columns=["sensor_id", "time"]).to_pylist()
    in_lake = [(r["sensor_id"], r["time"]) for r in lake if r["sensor_id"].startswith(lane.tag)]
    assert sorted(in_lake) == sorted(expected)
    with psycopg.connect(migrated.postgres.dsn(), autocommit=True) as conn:
        reasons = conn.execute("select reason from sensor_rejects where kafka_topic = %s", (lane.topic,)).fetchall()
    assert sorted(r[0] for r in reasons) == ["empty", "not_json", "undecodable", "wrong_type"]

    app_dir = cluster.work_dir / new_app(cluster, "sensorpipe-stream", before)
    fetched = list(app_dir.glob("*/*.jar"))
    assert bool(fetched) != jars_on_workers, f"jars in the executor's directory: {[j.name for j in fetched]}"
    executor_logs = list(app_dir.glob("*/stderr"))
    assert executor_logs, f"no executor ran on the worker: {app_dir} is missing or empty"
    texts = [log.read_text() for log in executor_logs]
    # The executor did the job's work (it ran tasks, not just registered), talking to a driver on loopback.
    assert any("Finished task" in text for text in texts), executor_logs
    assert all("CoarseGrainedScheduler@127.0.0.1:" in text for text in texts), texts[0][-3000:]
