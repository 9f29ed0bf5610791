"""A short real pipeline run that keeps going: simulator → Mosquitto → bridge → Kafka → stream job → database and lake.

Tests of what watches the pipeline (dashboards, Prometheus expressions, `sensorpipe top`) need real rows
in every table and live metrics endpoints; one `Pipeline` per test session provides both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from sensorpipe.config import load_settings
from sensorpipe.config.settings import parse_assignments
from sensorpipe.storage.lake import RAW, read_dataset
from sensorpipe.storage.migrate import migrate
from sensorpipe.storage.s3 import ensure_bucket
from tests.ingest_support import BridgeProcess, Lane, simulator
from tests.support import free_port

READINGS = 3_000
SENSORS = 6
MALFORMED_RATIO = 0.02
TIMEOUT_S = 300


class Pipeline:
    """Bridge and stream job running on lanes of their own, after `READINGS` simulated readings went through.

    `flags` point any sensorpipe command at this pipeline (topics, bucket, metrics ports); `settings` are
    the same as one object. `sensors` are the simulated sensor ids, each with rows in `sensor_data`.
    """

    def __init__(self, config: Path) -> None:
        self.config = config
        self.lane = Lane()
        self.bucket = f"lake-{uuid.uuid4().hex[:8]}"
        self.stream_metrics_port = free_port()
        self.bridge = BridgeProcess(config, self.lane)
        self.flags = [
            *self.lane.flags(),
            *("--set", f"s3.bucket={self.bucket}"),
            *("--set", f"stream.checkpoint_base={Path(tempfile.mkdtemp(prefix='pipeline-checkpoints-')).as_uri()}"),
            *("--set", f"bridge.metrics_port={self.bridge.metrics_port}"),
            *("--set", f"stream.metrics_port={self.stream_metrics_port}"),
        ]
        self.settings = load_settings(_overrides(self.flags), config)
        self.sensors = [f"sensor-{i:03d}" for i in range(1, SENSORS + 1)]
        self._log = Path(tempfile.mkstemp(prefix="pipeline-stream-", suffix=".log")[1])
        self.stream: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Migrate, start the stream job, publish, and wait until every table holds rows of this run."""
        migrate(self.settings)
        ensure_bucket(self.settings.s3)
        self.bridge.wait_subscribed()
        with self._log.open("w") as stderr:
            self.stream = subprocess.Popen(
                [sys.executable, "-m", "sensorpipe", "--config", str(self.config), *self.flags, "stream"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        started = time.time()
        published = simulator(
            self.config,
            self.lane,
            *("--sensors", str(SENSORS), "--rate", "500", "--count", str(READINGS)),
            *("--malformed-ratio", str(MALFORMED_RATIO)),
        )
        out, err = published.communicate(timeout=TIMEOUT_S)
        assert published.returncode == 0, err
        assert json.loads(out)["acked"] == READINGS
        self._wait_for_rows(started)

    def _wait_for_rows(self, since: float) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            counts = self._counts(since)
            least = READINGS * (1 - 2 * MALFORMED_RATIO)
            stored = counts["readings"] >= least and counts["aggregated_sensors"] == SENSORS and counts["rejects"]
            if stored and self._in_lake() >= least:
                return
            assert self.stream is not None and self.stream.poll() is None, f"the stream job exited:\n{self.log_tail()}"
            assert time.monotonic() < deadline, f"rows after {TIMEOUT_S} s: {counts}\n{self.log_tail()}"
            time.sleep(1)

    def _in_lake(self) -> int:
        """Readings the lake's `raw` holds: it commits once the readings go idle (or every minute)."""
        return int(read_dataset(self.settings, RAW, columns=["sensor_id"]).num_rows)

    def _counts(self, since: float) -> dict[str, int]:
        with psycopg.connect(self.settings.postgres.dsn()) as conn:
            row = conn.execute(
                "select (select count(*) from sensor_data where ingested_at >= to_timestamp(%(t)s)),"
                " (select count(distinct sensor_id) from sensor_data_1m"
                " where updated_at >= to_timestamp(%(t)s) and sensor_id = any(%(sensors)s)),"
                " (select count(*) from sensor_rejects where received_at >= to_timestamp(%(t)s))",
                {"t": since, "sensors": self.sensors},
            ).fetchone()
        assert row is not None
        return {"readings": row[0], "aggregated_sensors": row[1], "rejects": row[2]}

    def log_tail(self) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.stream is not None and self.stream.poll() is None:
            os.killpg(self.stream.pid, signal.SIGTERM)
            try:
                self.stream.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.stream.pid, signal.SIGKILL)
                self.stream.wait(10)
        if self.bridge.process.poll() is None:
            self.bridge.kill()
        self._log.unlink(missing_ok=True)


def _overrides(flags: list[str]) -> dict[str, dict[str, str]]:
    return parse_assignments([flags[i + 1] for i in range(0, len(flags), 2)])


__all__ = ["Pipeline"]
