"""The bench's figures from its samples: rates, restarts, latency windows, CPU and memory per component."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from sensorpipe.bench.figures import (
    Buckets,
    Probe,
    Step,
    Tick,
    batches_between,
    components,
    cpu_per_readings,
    cumulative,
    landed,
    landing_rate,
    latency,
    measured_batches,
    p99_series,
    rate_series,
    step_outcome,
    step_report,
    sustained,
)
from sensorpipe.bench.report import LakeSize
from sensorpipe.bench.runner import distinct_keys, lake_size, processes_for, trigger_seconds
from sensorpipe.bench.steps import Verdict
from sensorpipe.config import Settings
from sensorpipe.config.settings import LakeSettings
from sensorpipe.storage.lake import RAW, write_dataset

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


def test_a_step_the_bench_stopped_ends_its_load_when_told() -> None:
    stopped = step(sim_end=22.0)
    stopped.stopped = 20.0  # the simulator then drained its acknowledgements until 22 s
    assert (stopped.load_end, stopped.warm) == (20.0, 5.0)
    assert step(sim_end=22.0).load_end == 22.0


def test_a_restarted_counter_carries_on_from_its_last_value() -> None:
    probes = [probe(0, 0), probe(1, 100), probe(2, 250), probe(3, 40), probe(4, 90)]
    assert cumulative(probes, "database_rows") == [(0, 0), (1, 100), (2, 250), (3, 290), (4, 340)]
    assert cumulative([probe(0, None), probe(1, 5)], "database_rows", scale=10) == [(1, 50)]


def test_sustained_is_the_landing_rate_after_warm_up_while_the_load_ran() -> None:
    # 0 rows for the first 5 s (JVM, first batch), then 1,000 rows/s.
    probes = [probe(t, max(0, (t - 5) * 1000)) for t in range(0, 23)]
    assert sustained(probes, step(), "database_rows") == pytest.approx(1000.0)
    assert sustained([probe(0, 0)], step(), "database_rows") == 0.0


def test_step_outcome_keeps_the_backlog_while_the_load_ran() -> None:
    probes = [probe(t, backlog=b) for t, b in ((0.5, 10), (5.0, 20), (19.0, 30), (21.0, 0), (6.0, None))]
    asked = Step(1000.0, 18.0, 0.0, datetime.now(UTC), sim_end=20.0)  # the publisher's start-up took 2 s
    outcome = step_outcome(asked, probes, batch=1)
    assert list(outcome.lag) == [(0.5, 10.0), (5.0, 20.0), (19.0, 30.0)]
    assert (outcome.rate, outcome.duration_s) == (1000.0, 18.0)
    gateway = step_outcome(asked, probes, batch=50)  # a record holds 50 readings; the rate counts readings
    assert list(gateway.lag) == [(0.5, 500.0), (5.0, 1000.0), (19.0, 1500.0)]
    asked.stopped = 18.0  # the bench stopped the load at 18 s: the sample at 19 s is the simulator's drain
    assert list(step_outcome(asked, probes, batch=1).lag) == [(0.5, 10.0), (5.0, 20.0)]


def staircase(
    period_s: float, rate: float, end_s: float = 20.0, tick_s: float = 0.2, phase_s: float = 0.35
) -> list[Tick]:
    """Ticks of a stream job committing a micro-batch every `period_s` of what arrived at `rate` meanwhile."""
    ticks, t = [], 0.0
    while t <= end_s:
        commits = int(max(t - phase_s, 0.0) // period_s) + (t >= phase_s)
        ticks.append(Tick(t, round(commits * period_s * rate), commits))
        t = round(t + tick_s, 6)
    return ticks


def test_the_landing_rate_follows_the_commits_not_the_window_ends() -> None:
    # 1.6 s micro-batches of 1,600 readings: between the window's ends (5 s to 20 s) the counter rose by 9 or
    # 10 batches in 15 s (960/s or 1,067/s) depending on where the teeth fall; the commits say 1,000/s.
    ticked = step(sim_end=20.0)
    ticked.ticks = staircase(1.6, 1000.0)
    assert landing_rate(ticked) == pytest.approx(1000.0, rel=0.005)
    probes = [probe(t, db=ticked.ticks[t * 5].rows) for t in range(0, 21)]
    assert sustained(probes, ticked, "database_rows") == pytest.approx(1066.7, abs=0.1)  # the old figure
    assert landed(ticked, probes) == landing_rate(ticked)


def test_a_pipeline_falling_behind_lands_less_than_arrives() -> None:
    # 1,000/s arrive; each micro-batch reads what arrived until it started, and takes 3 % longer than the last.
    ticks, t, duration, commits = [], 0.0, 1.0, []
    while t < 25:
        commits.append((t + duration, 1000.0 * t))
        t, duration = t + duration, duration * 1.03
    for i in range(101):
        now = i * 0.2
        done = [c for c in commits if c[0] <= now]
        ticks.append(Tick(now, round(done[-1][1]) if done else 0, len(done)))
    behind = step(sim_end=20.0)
    behind.ticks = ticks
    rate = landing_rate(behind)
    assert rate is not None and 0.95 * 1000 < rate < 0.98 * 1000


def test_without_two_commits_the_landing_rate_comes_from_the_probes() -> None:
    quiet = step(sim_end=20.0)
    quiet.ticks = [Tick(t, 0, 0) for t in (6.0, 7.0)]
    assert landing_rate(quiet) is None
    probes = [probe(t, max(0, (t - 5) * 1000)) for t in range(0, 23)]
    assert landed(quiet, probes) == pytest.approx(1000.0)


def test_micro_batches_are_counted_in_the_measured_window() -> None:
    ticked = step(sim_end=20.0)
    ticked.ticks = staircase(1.6, 1000.0)
    assert measured_batches(ticked) == 10  # commits at 5.15, 6.75 ... 17.95, 19.55 s: after the warm-up (5 s)
    assert batches_between(ticked.ticks, 0.0, 3.0) == 2
    assert batches_between([], 0.0, 3.0) is None
    restarted = [Tick(1.0, 0, 40), Tick(2.0, 0, 41), Tick(3.0, 0, 1), Tick(4.0, 0, 2)]  # the job restarted
    assert batches_between(restarted, 0.0, 5.0) == 3


def test_stream_cpu_per_ten_thousand_readings_stored_counts_the_drain() -> None:
    probes = [probe(t, db=min(t, 20) * 1000, cpu={"stream": 10.0 + 0.2 * t, "kafka": 0.1 * t}) for t in range(0, 31)]
    done = step(sim_end=20.0, drained_at=25.0)
    done.settled_at = 30.0
    # 6 CPU s from 0 to 30 s for 20,000 readings stored: 3 s per 10,000.
    assert cpu_per_readings(probes, done, "stream") == pytest.approx(3.0)
    assert cpu_per_readings(probes, done, "bridge") is None
    assert cpu_per_readings([probe(t, db=0, cpu={"stream": t}) for t in range(5)], done, "stream") is None


def test_a_step_report_puts_the_verdict_beside_its_figures() -> None:
    done = step(sim_end=20.0)
    done.ticks = staircase(1.6, 1000.0)
    verdict = Verdict(False, "landed 900/s of 1,000/s offered (90 %)", 900.0, 2500.0)
    report = step_report(done, verdict, [], "stream", "search")
    assert (report.sustainable, report.landed, report.end_backlog, report.reason) == (
        False,
        900.0,
        2500.0,
        verdict.reason,
    )
    assert (report.load_s, report.batches, report.stream_cpu_per_10k, report.kind) == (20.0, 10, None, "search")
    assert (report.landed_share, report.end_backlog_s) == (0.9, 2.5)


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


def test_the_lake_size_counts_raw_rows_files_and_commits(tmp_path: Path) -> None:
    settings = Settings(lake=LakeSettings(backend="local", local_dir=tmp_path / "lake"))
    assert lake_size(settings) == LakeSize(0, 0, 0, None)
    day = datetime(2026, 12, 7, tzinfo=UTC)
    for count in (3, 2):
        times = pa.array([day + timedelta(seconds=i) for i in range(count)], pa.timestamp("us", tz="UTC"))
        write_dataset(settings, RAW, pa.table({"time": times, "sensor_id": ["s-1"] * count}))
    size = lake_size(settings)
    assert size is not None
    assert (size.rows, size.files, size.version) == (5, 2, 1)
    assert size.bytes > 0
