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
from tests.integration.test_stream_job import T0, Lane, encodings, migrated, produce, reading, stored_keys
from tests.spark_cluster import SparkCluster, standalone_cluster
from tests.support import sensorpipe

pytestmark = [pytest.mark.integration, pytest.mark.spark]

__all__ = ["migrated"]  # the module fixture, reused from the local-mode test


@pytest.fixture(scope="module")
def cluster() -> Iterator[SparkCluster]:
    with standalone_cluster(cores=1, memory="1g") as running:
        yield running


def completed_apps(cluster: SparkCluster, name: str) -> list[dict[str, object]]:
    """The master's completed applications called `name`; an app moves there shortly after its driver stops."""
    deadline = time.monotonic() + 60
    while True:
        apps = [a for a in cluster.state().get("completedapps", []) if a.get("name") == name]
        if apps or time.monotonic() > deadline:
            return apps
        time.sleep(0.5)


def test_the_stream_job_runs_unchanged_on_a_standalone_cluster(
    stack_config: Path, migrated: Settings, cluster: SparkCluster
) -> None:
    lane = Lane(migrated)
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
        *lane.flags(), "stream", "--master", cluster.url, "--available-now", config=stack_config, timeout_s=600
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

    apps = completed_apps(cluster, "sensorpipe-stream")
    assert len(apps) == 1, cluster.state()
    app_dir = cluster.work_dir / str(apps[0]["id"])
    executor_logs = list(app_dir.glob("*/stderr"))
    assert executor_logs, f"no executor ran on the worker: {app_dir} is missing or empty"
    texts = [log.read_text() for log in executor_logs]
    # The executor did the job's work (it ran tasks, not just registered), talking to a driver on loopback.
    assert any("Finished task" in text for text in texts), executor_logs
    assert all("CoarseGrainedScheduler@127.0.0.1:" in text for text in texts), texts[0][-3000:]
