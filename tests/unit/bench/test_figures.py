"""The bench's figures from its samples: rates, restarts, latency windows, CPU and memory per component."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sensorpipe.bench.figures import (
    Buckets,
    Probe,
    Step,
    components,
    cumulative,
    lag_outcome,
    latency,
    p99_series,
    rate_series,
    sustained,
)
from sensorpipe.bench.runner import distinct_keys, processes_for, trigger_seconds

INF = math.inf


def probe(
    t: float,
    db: int | None = None,
    *,
    totals: dict[str, int | None] | None = None,
    backlog: int | None = None,
    buckets: Buckets | None = None,
    cpu: dict[str, float] | None = None,
    rss: dict[str, int] | None = None,
) -> Probe:
    stages = {"mqtt_received": None, "kafka_forwarded": None, "database_rows": db, "lake_rows": db}
    return Probe(t, totals if totals is not None else stages, backlog, buckets, cpu or {}, rss or {})


def step(start: float = 0.0, sim_end: float = 20.0, drained_at: float = 22.0) -> Step:
    return Step(1000.0, sim_end - start, start, datetime.now(UTC), sim_end=sim_end, drained_at=drained_at)


def test_warm_up_is_a_quarter_of_the_step_at_most_five_seconds() -> None:
    assert step(sim_end=8.0).warm == 2.0
    assert step(start=10.0, sim_end=70.0).warm == 15.0


def test_a_restarted_counter_carries_on_from_its_last_value() -> None:
    probes = [probe(0, 0), probe(1, 100), probe(2, 250), probe(3, 40), probe(4, 90)]
    assert cumulative(probes, "database_rows") == [(0, 0), (1, 100), (2, 250), (3, 290), (4, 340)]
    assert cumulative([probe(0, None), probe(1, 5)], "database_rows", scale=10) == [(1, 50)]


def test_sustained_is_the_landing_rate_after_warm_up_while_the_load_ran() -> None:
    # 0 rows for the first 5 s (JVM, first batch), then 1,000 rows/s.
    probes = [probe(t, max(0, (t - 5) * 1000)) for t in range(0, 23)]
    assert sustained(probes, step(), "database_rows") == pytest.approx(1000.0)
    assert sustained([probe(0, 0)], step(), "database_rows") == 0.0


def test_lag_outcome_keeps_the_backlog_while_the_load_ran() -> None:
    probes = [probe(t, backlog=b) for t, b in ((0.5, 10), (5.0, 20), (19.0, 30), (21.0, 0), (6.0, None))]
    asked = Step(1000.0, 18.0, 0.0, datetime.now(UTC), sim_end=20.0)  # the publisher's start-up took 2 s
    outcome = lag_outcome(asked, probes, batch=1)
    assert list(outcome.lag) == [(0.5, 10.0), (5.0, 20.0), (19.0, 30.0)]
    assert (outcome.rate, outcome.duration_s) == (1000.0, 18.0)
    gateway = lag_outcome(asked, probes, batch=50)  # a record holds 50 readings; the rate counts readings
    assert list(gateway.lag) == [(0.5, 500.0), (5.0, 1000.0), (19.0, 1500.0)]


def hist(under_1s: float, under_2s: float, total: float) -> Buckets:
    return ((1.0, under_1s), (2.0, under_2s), (INF, total))


def test_latency_counts_the_readings_stored_between_warm_up_and_drain() -> None:
    probes = [
        probe(1, buckets=hist(500, 500, 500)),  # warm-up: not counted
        probe(5, buckets=hist(500, 500, 500)),
        probe(22, buckets=hist(1400, 1500, 1500)),
        probe(30, buckets=hist(9999, 9999, 9999)),  # after the drain: not counted
    ]
    result = latency(probes, step())
    assert result.count == 1000
    assert result.source == "histogram"
    assert result.p50_s is not None and result.p50_s <= 1.0
    assert result.p99_s is not None and 1.0 < result.p99_s <= 2.0


def test_latency_after_a_restart_or_without_metrics_is_unknown() -> None:
    restarted = [probe(4, buckets=hist(900, 900, 900)), probe(22, buckets=hist(10, 10, 10))]
    assert latency(restarted, step()).p99_s is None
    assert latency([probe(22)], step()).count == 0


def test_p99_over_time_uses_windows_with_readings() -> None:
    probes = [probe(t, buckets=hist(100.0 * t, 100.0 * t, 100.0 * t)) for t in range(0, 12)]
    probes.append(probe(12, buckets=hist(1100, 1100, 1100)))  # nothing new in the last window
    series = p99_series(probes)
    assert [t for t, _ in series.points] == [5, 6, 7, 8, 9, 10, 11, 12]
    assert all(0 < v <= 1.0 for _, v in series.points)
    quiet = p99_series([probe(t, buckets=hist(5, 5, 5)) for t in range(0, 12)])
    assert quiet.points == ()


def test_rates_per_stage_count_readings_not_messages() -> None:
    probes = [
        probe(
            t, totals={"mqtt_received": 10 * t, "kafka_forwarded": 10 * t, "database_rows": 50 * t, "lake_rows": None}
        )
        for t in range(3)
    ]
    by_name = {s.name: s.points for s in rate_series(probes, batch=5)}
    assert by_name["mqtt (bridge received)"] == ((0.5, 50.0), (1.5, 50.0))
    assert by_name["database"] == ((0.5, 50.0), (1.5, 50.0))
    assert by_name["lake"] == ()


def test_components_average_cpu_in_the_window_and_peak_memory_overall() -> None:
    probes = [
        probe(0, cpu={"kafka": 0.0}, rss={"kafka": 900}),
        probe(5, cpu={"kafka": 1.0, "bridge": 0.0}, rss={"kafka": 500, "bridge": 100}),
        probe(15, cpu={"kafka": 4.0, "bridge": 5.0}, rss={"kafka": 600, "bridge": 120}),
    ]
    parts = {c.name: c for c in components(probes, step())}
    assert parts["kafka"].cpu_cores == pytest.approx(0.3)
    assert parts["kafka"].rss_bytes == 900
    assert parts["bridge"].cpu_cores == pytest.approx(0.5)


def test_trigger_text_in_seconds() -> None:
    assert trigger_seconds("1 second") == 1.0
    assert trigger_seconds("500 milliseconds") == 0.5
    assert trigger_seconds("2 minutes") == 120.0
    with pytest.raises(ValueError, match="not a trigger"):
        trigger_seconds("soon")


def test_a_bigger_load_gets_two_simulator_processes() -> None:
    assert processes_for(2000, 1) == 1
    assert processes_for(50_000, 50) == 1
    assert processes_for(8000, 1) == 2


def test_distinct_keys_counts_a_reading_written_twice_once() -> None:
    times = pa.array([1, 2, 1, 1], pa.timestamp("us", tz="UTC"))
    table = pa.table({"sensor_id": ["a", "a", "a", "b"], "time": times})
    assert distinct_keys(table) == 3
    assert distinct_keys(table.slice(0, 0)) == 0
