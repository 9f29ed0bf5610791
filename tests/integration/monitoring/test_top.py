"""`sensorpipe top` against the session's running pipeline: one frame, its JSON, a missing bridge, live rates.

The pipeline's bridge and stream job are real processes after 3,000 simulated readings (2 % malformed),
so every stage has counted, every sensor has a reading and there are dead letters to show.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import pytest

from sensorpipe.monitoring.scrape import scrape
from tests.ingest_support import simulator
from tests.pipeline_support import MALFORMED_RATIO, READINGS, Pipeline
from tests.support import free_port, sensorpipe

pytestmark = [pytest.mark.integration]

STAGE_LABELS = ("MQTT received", "Kafka forwarded", "stream read", "database rows", "lake rows")
STORED_AT_LEAST = READINGS * (1 - 2 * MALFORMED_RATIO)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich lays a frame out to COLUMNS when stdout is not a terminal: wide enough that no line wraps."""
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture(scope="module", autouse=True)
def settled(pipeline: Pipeline) -> None:
    """The stream job counts records read when Spark reports a batch, after its rows are stored: wait for that."""
    deadline = time.monotonic() + 60
    while True:
        metrics = scrape("127.0.0.1", pipeline.stream_metrics_port)
        read = metrics.total("sensorpipe_stream_input_rows_total", query="readings") or 0
        if read >= READINGS:
            return
        assert time.monotonic() < deadline, f"the stream job reported {read} of {READINGS} records read"
        time.sleep(0.5)


def top(pipeline: Pipeline, *args: str, sets: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`sensorpipe top ...` pointed at the pipeline; `sets` are `section.field=value` that win over its flags."""
    overrides = [arg for pair in sets for arg in ("--set", pair)]
    result = sensorpipe(*pipeline.flags, *overrides, "top", "--sensors", "1000", *args, config=pipeline.config)
    assert result.returncode == 0, result.stderr
    return result


def stage(frame: str, label: str) -> tuple[str, str]:
    """(per second, total) as the frame prints them for one stage."""
    match = re.search(rf"{label}\s+(\S+)\s+(\S+)", frame)
    assert match, f"no {label} line in:\n{frame}"
    return match.group(1), match.group(2)


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_one_frame_shows_every_stage_the_lag_the_dead_letters_and_every_sensor(pipeline: Pipeline) -> None:
    frame = top(pipeline, "--once").stdout
    assert "unavailable" not in frame, frame
    for label in STAGE_LABELS:
        per_s, total = stage(frame, label)
        assert number(per_s) >= 0, f"{label}: {per_s}"
        assert number(total) >= (READINGS if label == "MQTT received" else STORED_AT_LEAST), f"{label}: {total}"
    assert re.search(r"lag\s+[\d,]+ offsets behind Kafka \(readings query\)", frame), frame
    dead = re.search(r"dead letters\s+([\d,]+) · [\d,.]+/s · bridge [\d,]+ · stream ([\d,]+) \((.+?)\)", frame)
    assert dead, frame
    assert number(dead.group(1)) == number(dead.group(2)) > 0, "the malformed 2 % were rejected by the stream job"
    assert "not_json" in dead.group(3) or "undecodable" in dead.group(3), dead.group(3)
    assert re.search(r"[\d,]+ in sensor_rejects in the last hour", frame)
    assert "MQTT connected · Kafka reachable" in frame
    assert re.search(r"readings (active|idle)", frame), frame
    for sensor in pipeline.sensors:
        row = rf"{sensor}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+-?[\d.]+ °C\s+[\d.]+ %\s+[\d.]+ (s|min)\b"
        assert re.search(row, frame), f"no reading of {sensor} in:\n{frame}"


def test_json_holds_the_same_facts(pipeline: Pipeline) -> None:
    frame = top(pipeline, "--once").stdout
    facts: dict[str, Any] = json.loads(top(pipeline, "--json").stdout)
    assert facts["unavailable"] == {}
    assert facts["interval_s"] >= 1.0
    for (key, figures), label in zip(facts["stages"].items(), STAGE_LABELS, strict=True):
        assert isinstance(figures["per_s"], float) and figures["per_s"] >= 0, key
        assert figures["total"] >= STORED_AT_LEAST, key
        if key == "mqtt_received":  # the simulator is done: the bridge's count no longer moves
            assert figures["total"] == number(stage(frame, label)[1])
    assert isinstance(facts["kafka_lag"], int) and facts["kafka_lag"] >= 0
    dead = facts["dead_letters"]
    assert dead["total"] == sum(dead["bridge"].values()) + sum(dead["stream"].values()) > 0
    assert dead["rejects_last_hour"] > 0
    assert facts["bridge"]["mqtt_connected"] and facts["bridge"]["kafka_reachable"]
    assert facts["stream"]["queries"]["readings"] in {"active", "idle"}
    shown = {s["sensor_id"]: s for s in facts["sensors"]["shown"]}
    assert facts["sensors"]["with_readings"] == len(shown)
    for sensor in pipeline.sensors:
        assert shown[sensor]["temperature"] is not None or shown[sensor]["humidity"] is not None
        assert 0 <= shown[sensor]["age_s"] < 3600
        assert sensor in frame


def test_a_bridge_that_does_not_answer_is_one_line_and_the_rest_renders(pipeline: Pipeline) -> None:
    closed = free_port()
    sets = (f"bridge.metrics_port={closed}",)
    frame = top(pipeline, "--once", "--interval", "0.5", sets=sets).stdout
    assert (
        f"bridge        ✗ unavailable: no metrics at http://127.0.0.1:{closed}/metrics (Connection refused):"
        f" is `sensorpipe bridge` running, with bridge.metrics_port {closed}?" in frame
    ), frame
    assert stage(frame, "MQTT received") == ("-", "-")
    assert number(stage(frame, "database rows")[1]) >= STORED_AT_LEAST
    assert frame.count("unavailable") == 1
    assert all(sensor in frame for sensor in pipeline.sensors)
    facts = json.loads(top(pipeline, "--json", "--interval", "0.5", sets=sets).stdout)
    assert set(facts["unavailable"]) == {"bridge"}
    assert facts["bridge"] is None and facts["dead_letters"]["bridge"] is None
    assert facts["stages"]["kafka_forwarded"] == {"per_s": None, "total": None}
    assert facts["dead_letters"]["total"] == sum(facts["dead_letters"]["stream"].values()) > 0


def test_rates_follow_readings_as_they_flow(pipeline: Pipeline) -> None:
    bridge_port = pipeline.settings.bridge.metrics_port
    assert bridge_port is not None

    def received() -> float:
        return scrape("127.0.0.1", bridge_port).total("sensorpipe_bridge_received_total") or 0.0

    start = received()
    publishing = simulator(pipeline.config, pipeline.lane, "--sensors", "6", "--rate", "200", "--duration", "10")
    try:
        deadline = time.monotonic() + 60
        while received() == start:  # the simulator is connected and publishing
            assert publishing.poll() is None, publishing.communicate()[1]
            assert time.monotonic() < deadline, "the bridge received nothing from the simulator"
            time.sleep(0.2)
        facts = json.loads(top(pipeline, "--json", "--interval", "2").stdout)
    finally:
        _out, err = publishing.communicate(timeout=120)
    assert publishing.returncode == 0, err
    assert facts["stages"]["mqtt_received"]["per_s"] > 0
    assert facts["stages"]["kafka_forwarded"]["per_s"] > 0
