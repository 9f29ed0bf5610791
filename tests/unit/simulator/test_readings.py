"""Simulated readings: inside the contract's ranges, reproducible, with a visible daily cycle, in every shape."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from statistics import mean
from typing import Any

import pytest

from sensorpipe.simulator.readings import (
    BATCH_KINDS,
    LEGACY_TOPIC,
    OUT_OF_RANGE_TEMPERATURE,
    SINGLE_KINDS,
    Fleet,
    FleetSpec,
    Malformed,
)

NOON = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()


def _decode(payload: bytes) -> Any:
    return json.loads(payload)


def test_readings_stay_within_the_contract_ranges_and_name_their_sensor() -> None:
    fleet = Fleet(FleetSpec(sensors=50, seed=7))
    for i in range(20_000):
        message = fleet.next_message(NOON + i * 37.0)
        reading = _decode(message.payload)
        assert set(reading) == {"sensor_id", "timestamp", "temperature", "humidity", "seq"}
        assert message.topic == f"sensors/{reading['sensor_id']}/data"
        assert -80 <= reading["temperature"] <= 150
        assert 0 <= reading["humidity"] <= 100
        assert math.isfinite(reading["temperature"]) and math.isfinite(reading["humidity"])


def test_same_seed_and_timestamps_give_the_same_payloads_another_seed_does_not() -> None:
    def run(seed: int) -> list[bytes]:
        fleet = Fleet(FleetSpec(sensors=5, seed=seed))
        return [fleet.next_message(NOON + i).payload for i in range(200)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_a_sensor_keeps_its_climate_however_the_fleet_is_split() -> None:
    whole = Fleet(FleetSpec(sensors=4, seed=1))
    half = Fleet(FleetSpec(sensors=4, seed=1), [2, 4], stream=1)
    assert whole._base_t[1] == half._base_t[0]
    assert whole._amp_h[3] == half._amp_h[1]


def test_the_daily_cycle_is_visible_warm_and_dry_afternoons_cool_and_humid_nights() -> None:
    fleet = Fleet(FleetSpec(sensors=1, seed=11))
    midnight = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    afternoon: list[tuple[float, float]] = []
    night: list[tuple[float, float]] = []
    for day in range(30):
        for hour, into in ((3, night), (15, afternoon)):
            _, temperature, humidity = fleet.values(0, midnight + day * 86400 + hour * 3600)
            into.append((temperature, humidity))
    assert mean(t for t, _ in afternoon) - mean(t for t, _ in night) > 3.0
    assert mean(h for _, h in night) - mean(h for _, h in afternoon) > 5.0


def test_readings_are_unique_by_sensor_and_timestamp_and_by_seq_even_when_time_stands_still() -> None:
    fleet = Fleet(FleetSpec(sensors=3))
    readings = [_decode(fleet.next_message(NOON).payload) for _ in range(300)]
    assert len({(r["sensor_id"], r["timestamp"]) for r in readings}) == 300
    assert [r["seq"] for r in readings] == list(range(300))
    assert all(round(r["timestamp"], 3) == r["timestamp"] for r in readings)


def test_processes_share_one_sequence_without_overlap() -> None:
    a = Fleet(FleetSpec(sensors=4), [1, 3], seq_start=0, seq_step=2)
    b = Fleet(FleetSpec(sensors=4), [2, 4], seq_start=1, seq_step=2, stream=1)
    seqs = [_decode(f.next_message(NOON).payload)["seq"] for f in (a, b) for _ in range(5)]
    assert sorted(seqs) == list(range(10))


def test_a_batch_is_a_json_array_of_readings_from_different_sensors_on_the_gateway_topic() -> None:
    fleet = Fleet(FleetSpec(sensors=10, batch=4), gateway="gw-07")
    message = fleet.next_message(NOON)
    batch = _decode(message.payload)
    assert message.topic == "sensors/gw-07/data"
    assert message.readings == 4
    assert [r["sensor_id"] for r in batch] == ["sensor-001", "sensor-002", "sensor-003", "sensor-004"]
    assert [r["seq"] for r in batch] == [0, 1, 2, 3]
    last = fleet.next_message(NOON, size=2)
    assert [r["sensor_id"] for r in _decode(last.payload)] == ["sensor-005", "sensor-006"]
    assert last.readings == 2


def test_legacy_is_the_original_payload_on_the_original_topic_with_timestamps_unique_across_the_fleet() -> None:
    fleet = Fleet(FleetSpec(sensors=5, legacy=True))
    messages = [fleet.next_message(NOON) for _ in range(50)]
    assert {m.topic for m in messages} == {LEGACY_TOPIC}
    readings = [_decode(m.payload) for m in messages]
    assert all(list(r) == ["temperature", "humidity", "timestamp"] for r in readings)
    assert len({r["timestamp"] for r in readings}) == 50


def _kinds(spec: FleetSpec, messages: int) -> list[Malformed | None]:
    fleet = Fleet(spec)
    return [fleet.next_message(NOON).malformed for _ in range(messages)]


def test_exactly_the_requested_share_is_malformed_spread_evenly_kinds_in_turn() -> None:
    kinds = _kinds(FleetSpec(sensors=3, malformed_ratio=0.1), 1000)
    bad = [k for k in kinds if k is not None]
    assert len(bad) == 100
    assert bad[:8] == [*SINGLE_KINDS, *SINGLE_KINDS]
    assert kinds[9] is not None and kinds[:9] == [None] * 9
    batch_bad = [k for k in _kinds(FleetSpec(sensors=3, batch=3, malformed_ratio=0.5), 10) if k is not None]
    assert batch_bad == list(BATCH_KINDS)
    assert _kinds(FleetSpec(sensors=3, malformed_ratio=1.0), 4) == list(SINGLE_KINDS)


def _malformed(spec: FleetSpec, kind: Malformed) -> bytes:
    fleet = Fleet(spec)
    for _ in range(100):
        message = fleet.next_message(NOON)
        if message.malformed is kind:
            return message.payload
    raise AssertionError(f"no {kind} message")


@pytest.mark.parametrize("legacy", [False, True])
def test_each_malformed_kind_is_bad_the_way_it_says(legacy: bool) -> None:
    spec = FleetSpec(sensors=2, legacy=legacy, malformed_ratio=1.0)
    with pytest.raises(ValueError):
        json.loads(_malformed(spec, Malformed.NOT_JSON))
    assert _decode(_malformed(spec, Malformed.WRONG_TYPE))["temperature"] == "hot"
    assert _decode(_malformed(spec, Malformed.OUT_OF_RANGE))["temperature"] == OUT_OF_RANGE_TEMPERATURE
    assert _malformed(spec, Malformed.EMPTY) == b""


def test_a_bad_element_spoils_one_reading_of_a_batch_not_its_neighbours() -> None:
    batch = _decode(_malformed(FleetSpec(sensors=5, batch=5, malformed_ratio=1.0), Malformed.BAD_ELEMENT))
    temperatures = [r["temperature"] for r in batch]
    assert temperatures[2] == "hot"
    assert all(isinstance(t, float) and -80 <= t <= 150 for i, t in enumerate(temperatures) if i != 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"sensors": 0}, "--sensors must be at least 1"),
        ({"sensors": 1, "batch": 0}, "--batch must be at least 1"),
        ({"sensors": 1, "batch": 2, "legacy": True}, "drop --batch, or drop --legacy"),
        ({"sensors": 1, "malformed_ratio": 1.5}, "give a number from 0 to 1"),
    ],
)
def test_impossible_fleets_are_refused_with_the_option_to_fix(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FleetSpec(**spec)


def test_topics_follow_the_configured_subscription() -> None:
    spec = FleetSpec(2, topic="site-a/+/telemetry", legacy_topic="site-a/legacy")
    fleet = Fleet(spec)
    topics = {fleet.next_message(NOON + i).topic for i in range(4)}
    assert topics == {"site-a/sensor-001/telemetry", "site-a/sensor-002/telemetry"}
    batch = FleetSpec(3, batch=3, topic="site-a/+/telemetry")
    assert Fleet(batch, gateway="gw-07").next_message(NOON).topic == "site-a/gw-07/telemetry"
    legacy = FleetSpec(1, legacy=True, legacy_topic="site-a/legacy")
    assert Fleet(legacy).next_message(NOON).topic == "site-a/legacy"


@pytest.mark.parametrize("topic", ["sensors/data", "sensors/#", "sensors/+/data/#"])
def test_a_subscription_without_a_sensor_level_is_refused(topic: str) -> None:
    with pytest.raises(ValueError, match="needs one \\+ level"):
        FleetSpec(1, topic=topic)
