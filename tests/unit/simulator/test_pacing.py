"""Pacing arithmetic and how a job is split between publisher processes."""

from __future__ import annotations

import json

import pytest

from sensorpipe.simulator.publisher import Job, Pacer
from sensorpipe.simulator.readings import FleetSpec

NOW = 1_795_000_000.0


def test_messages_fall_due_once_their_last_reading_is_due() -> None:
    pacer = Pacer(rate=100, batch=10)
    assert [pacer.due(t) for t in (0.0, 0.099, 0.1, 0.55, 2.0)] == [0, 0, 1, 5, 20]
    assert pacer.due_at(0) == pytest.approx(0.1)
    assert pacer.due_at(4) == pytest.approx(0.5)


def test_a_count_caps_the_messages_and_the_last_batch_carries_the_remainder() -> None:
    pacer = Pacer(rate=1000, batch=4, count=10)
    assert pacer.total == 3
    assert [pacer.size(j) for j in range(3)] == [4, 4, 2]
    assert pacer.due(0.009) == 2
    assert pacer.due(0.010) == 3
    assert pacer.due(60.0) == 3
    assert not pacer.done(2, 60.0)
    assert pacer.done(3, 0.0)


def test_a_duration_stops_generation_at_its_end() -> None:
    pacer = Pacer(rate=10, batch=1, duration_s=2.0)
    assert pacer.due(5.0) == 20
    assert not pacer.done(20, 1.99)
    assert pacer.done(20, 2.0)


@pytest.mark.parametrize(("count", "processes"), [(10, 3), (7, 7), (1000, 2), (5, 4)])
def test_processes_split_sensors_rate_and_count_and_their_seqs_cover_the_count_once(count: int, processes: int) -> None:
    job = Job(FleetSpec(sensors=7), rate=90.0, count=count, processes=processes)
    pacers = [job.pacer_of(i) for i in range(processes)]
    assert sum(p.count or 0 for p in pacers) == count
    assert all(p.rate == pytest.approx(90.0 / processes) for p in pacers)
    seqs, sensors = [], set()
    for i, pacer in enumerate(pacers):
        fleet = job.fleet_of(i)
        for j in range(pacer.total or 0):
            reading = json.loads(fleet.next_message(NOW, pacer.size(j)).payload)
            seqs.append(reading["seq"])
            sensors.add(reading["sensor_id"])
    assert sorted(seqs) == list(range(count))
    assert len(sensors) == min(7, count)


def test_each_process_is_its_own_gateway() -> None:
    job = Job(FleetSpec(sensors=4, batch=2), processes=2)
    assert [job.fleet_of(i).next_message(NOW).topic for i in range(2)] == ["sensors/gw-01/data", "sensors/gw-02/data"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": -1}, "--rate is readings per second"),
        ({"count": 5, "duration_s": 1.0}, "give --count or --duration, not both"),
        ({"count": 0}, "--count must be at least 1"),
        ({"qos": 3}, "--qos must be 0, 1 or 2"),
        ({"buffer": 0}, "--buffer must hold at least 1 message"),
        ({"processes": 4}, r"between 1 and --sensors \(3\)"),
        ({"drain_timeout_s": -1}, "--drain-timeout"),
    ],
)
def test_impossible_jobs_are_refused_naming_the_option(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Job(FleetSpec(sensors=3), **options)  # type: ignore[arg-type]
