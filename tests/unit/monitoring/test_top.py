"""`sensorpipe top` without a network: figures out of real metric registries, rates, rendering and JSON."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from sensorpipe.bridge.metrics import BridgeMetrics
from sensorpipe.monitoring.scrape import Scrape
from sensorpipe.monitoring.top import (
    BridgeFigures,
    DatabaseFigures,
    Frame,
    LatestReading,
    Observed,
    Snapshot,
    StreamFigures,
    Unavailable,
    between,
    bridge_figures,
    stream_figures,
)
from sensorpipe.monitoring.top_view import frame_json, render
from sensorpipe.stream.monitoring import READING_LATENCY_BUCKETS_S, StreamMetrics

AT = datetime(2026, 11, 28, 14, 3, 22, tzinfo=UTC)
NONE_OBSERVED = Observed()
DOWN = "no metrics at http://127.0.0.1:9310/metrics (Connection refused): is `sensorpipe bridge` running?"


def scraped(registry: CollectorRegistry) -> Scrape:
    """What `scrape()` returns for a process exporting `registry`."""
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    samples = tuple(sample for family in families for sample in family.samples)
    return Scrape("http://test/metrics", samples, {family.name: family.type for family in families})


def bridge(received: int, dead: int = 0, latency: Observed = NONE_OBSERVED) -> BridgeFigures:
    return BridgeFigures(
        received=received,
        forwarded=received - dead,
        dead_lettered={"payload_too_large": dead} if dead else {},
        errors=0,
        in_flight=0,
        mqtt_connected=True,
        kafka_reachable=True,
        forward_latency=latency,
    )


def stream(read: int, rejected: int = 0, lag: int | None = 0, batch: Observed = NONE_OBSERVED) -> StreamFigures:
    stored = read - rejected
    return StreamFigures(
        read=read,
        sink_rows={"database": stored, "lake": stored, "aggregates": 6},
        rejected={"not_json": rejected} if rejected else {},
        kafka_lag=lag,
        queries={"readings": "active", "aggregates": "idle"},
        batch_duration=batch,
        end_to_end=NONE_OBSERVED,
    )


def reading(sensor_id: str, age_s: float, temperature: float | None = 21.5) -> LatestReading:
    return LatestReading(sensor_id, None, None, AT - timedelta(seconds=age_s), temperature, 40.25, age_s)


def snapshot(
    clock_s: float,
    bridge_: BridgeFigures | Unavailable,
    stream_: StreamFigures | Unavailable,
    database: DatabaseFigures | Unavailable | None = None,
) -> Snapshot:
    latest = (reading("sensor-001", 0.4), reading("sensor-002", 1.2))
    return Snapshot(AT, clock_s, bridge_, stream_, database or DatabaseFigures(latest, 7))


def text(frame: Frame, sensors: int = 10, silent_after_s: float = 600) -> str:
    console = Console(record=True, width=200, color_system=None)  # no line of the panel wraps
    console.print(render(frame, sensors, silent_after_s))
    return console.export_text()


def test_bridge_figures_come_from_the_bridges_own_metric_names() -> None:
    metrics = BridgeMetrics()
    metrics.received.inc(100)
    metrics.forwarded.inc(98)
    metrics.dead_lettered.labels("payload_too_large").inc(2)
    metrics.errors.labels("kafka_retry").inc(3)
    metrics.in_flight.set(4)
    metrics.mqtt_connected.set(1)
    metrics.latency.observe(0.002)
    metrics.latency.observe(0.004)
    figures = bridge_figures(scraped(metrics.registry))
    assert (figures.received, figures.forwarded, figures.errors, figures.in_flight) == (100, 98, 3, 4)
    assert figures.dead_lettered == {"payload_too_large": 2}
    assert figures.mqtt_connected and not figures.kafka_reachable
    assert figures.forward_latency.sum_s == pytest.approx(0.006)
    assert figures.forward_latency.count == 2


def test_stream_figures_take_the_readings_query_and_the_current_state_of_each_query() -> None:
    metrics = StreamMetrics()
    metrics.input_rows.labels("readings").inc(500)
    metrics.input_rows.labels("aggregates").inc(500)  # reads the same records: not a stage of its own
    metrics.count_sink_rows("database", 490)
    metrics.count_sink_rows("lake", 490)
    metrics.count_rejects(7, "not_json")
    metrics.count_rejects(3, "out_of_range")
    metrics.kafka_lag.labels("readings").set(12)
    metrics.kafka_lag.labels("aggregates").set(99)
    metrics.state.labels("readings").state("active")
    metrics.state.labels("aggregates").state("failed")
    metrics.batch_duration.labels("readings").observe(0.5)
    figures = stream_figures(scraped(metrics.registry))
    assert (figures.read, figures.kafka_lag) == (500, 12)
    assert figures.sink_rows == {"database": 490, "lake": 490}
    assert figures.rejected == {"not_json": 7, "out_of_range": 3}
    assert figures.queries == {"readings": "active", "aggregates": "failed"}
    assert figures.batch_duration == Observed(0.5, 1)


def test_stream_figures_carry_the_end_to_end_histogram_cumulative_and_ascending() -> None:
    metrics = StreamMetrics()
    metrics.count_latencies({"0": 4, "2": 3, str(len(READING_LATENCY_BUCKETS_S)): 1, "sum_ms": 9_000})
    buckets = stream_figures(scraped(metrics.registry)).end_to_end_buckets
    assert [le for le, _ in buckets] == [*READING_LATENCY_BUCKETS_S, math.inf]
    assert buckets[0] == (0.25, 4) and buckets[1] == (0.5, 4) and buckets[2] == (0.75, 7)
    assert buckets[-2] == (3600.0, 7) and buckets[-1] == (math.inf, 8)


def test_a_stream_job_before_its_first_batch_has_zero_rows_and_no_lag() -> None:
    figures = stream_figures(scraped(StreamMetrics().registry))
    assert (figures.read, figures.sink_rows, figures.rejected, figures.kafka_lag) == (0, {}, {}, None)


def test_rates_are_the_growth_between_two_snapshots_per_second() -> None:
    before = snapshot(10.0, bridge(1_000, dead=1, latency=Observed(1.0, 100)), stream(900, rejected=20))
    after = snapshot(12.0, bridge(1_400, dead=3, latency=Observed(1.8, 500)), stream(1_300, rejected=26))
    frame = between(before, after)
    assert frame.interval_s == 2.0
    assert frame.rates == {
        "mqtt_received": 200.0,
        "kafka_forwarded": 199.0,
        "stream_read": 200.0,
        "database_rows": 197.0,
        "lake_rows": 197.0,
    }
    assert frame.totals["mqtt_received"] == 1_400
    assert frame.dead_letters_per_s == pytest.approx((2 + 6) / 2)
    assert frame.forward_latency_s == pytest.approx(0.8 / 400)


def test_a_restarted_process_counts_from_zero_and_its_rate_is_not_negative() -> None:
    frame = between(snapshot(0.0, bridge(5_000), stream(10)), snapshot(1.0, bridge(30), stream(10)))
    assert frame.rates["mqtt_received"] == 30.0
    assert frame.rates["stream_read"] == 0.0


def test_no_rates_from_one_snapshot_nor_for_a_source_unavailable_in_either() -> None:
    first = snapshot(5.0, bridge(10), stream(10, batch=Observed(2.0, 4)))
    assert set(between(first, first).rates.values()) == {None}
    assert between(first, first).batch_duration_s is None
    frame = between(snapshot(4.0, Unavailable(DOWN), stream(0)), first)
    assert frame.rates["mqtt_received"] is None and frame.forward_latency_s is None
    assert frame.rates["stream_read"] == 10.0
    assert frame.dead_letters_per_s == 0.0, "the stream job's rejects still count"


def test_observed_mean_covers_only_the_new_observations() -> None:
    assert Observed(3.0, 10).mean_since(Observed(1.0, 6)) == 0.5
    assert Observed(3.0, 10).mean_since(Observed(3.0, 10)) is None
    assert Observed(0.1, 1).mean_since(Observed(9.0, 90)) is None, "a restart gives no mean rather than a wrong one"


def test_the_frame_shows_rates_totals_lag_dead_letters_and_sources() -> None:
    before = snapshot(0.0, bridge(1_000, latency=Observed(0.0, 0)), stream(990, rejected=10, lag=3))
    after = snapshot(
        1.0,
        bridge(1_512, dead=2, latency=Observed(1.05, 500)),
        stream(1_500, rejected=21, lag=42, batch=Observed(0.25, 1)),
    )
    shown = text(between(before, after))
    assert re.search(r"MQTT received\s+512\.0\s+1,512", shown)
    assert re.search(r"Kafka forwarded\s+510\.0\s+1,510", shown)
    assert re.search(r"stream read\s+510\.0\s+1,500", shown)
    assert re.search(r"database rows\s+499\.0\s+1,479", shown)
    assert re.search(r"lake rows\s+499\.0\s+1,479", shown)
    assert "lag           42 offsets behind Kafka (readings query)" in shown
    assert (
        "dead letters  23 · 13.0/s · bridge 2 (payload_too_large 2) · stream 21 (not_json 21)"
        " · 7 in sensor_rejects in the last hour" in shown
    )
    assert "MQTT connected · Kafka reachable · 0 in flight · 0 errors recovered · forward 2.1 ms" in shown
    assert "aggregates idle, readings active · batch 250.0 ms · end to end -" in shown
    assert "2 sensors with readings, 0 silent for 10 min or more" in shown
    assert "rates over 1.0 s" in shown


def test_sensors_stalest_first_cut_to_the_limit_and_silent_ones_counted() -> None:
    latest = (
        reading("a-fresh", 0.3),
        reading("b-silent", 3 * 3600.0),
        reading("c-recent", 42.0),
        reading("d-no-temperature", 5.0, temperature=None),
    )
    frame = between(*(snapshot(t, bridge(0), stream(0), DatabaseFigures(latest, 0)) for t in (0.0, 1.0)))
    shown = text(frame, sensors=3, silent_after_s=60)
    rows = [line for line in shown.splitlines() if re.match(r"\W*[a-d]-", line)]
    assert [row.split()[1] for row in rows] == ["b-silent", "c-recent", "d-no-temperature"]
    assert re.search(r"b-silent\s+2026-11-28 11:03:22\s+21\.5 °C\s+40\.2 %\s+3 h", shown)
    assert re.search(r"d-no-temperature .* - °C .* 5\.0 s", shown)
    assert "3 of 4 sensors, stalest first" in shown
    assert "4 sensors with readings, 1 silent for 1 min or more" in shown


def test_an_unavailable_source_shows_why_and_the_rest_still_renders() -> None:
    database = Unavailable("PostgreSQL at 127.0.0.1:5432 is unreachable: is `sensorpipe stack up` running?")
    frame = between(
        snapshot(0.0, Unavailable(DOWN), stream(100, rejected=4), database),
        snapshot(1.0, Unavailable(DOWN), stream(150, rejected=5), database),
    )
    shown = text(frame)
    assert "bridge        ✗ unavailable: " + DOWN in shown
    assert "database      ✗ unavailable: PostgreSQL at 127.0.0.1:5432 is unreachable" in shown
    assert re.search(r"MQTT received\s+-\s+-", shown)
    assert re.search(r"stream read\s+50\.0\s+150", shown)
    assert re.search(r"dead letters  5 · 1\.0/s · stream 5 \(not_json 5\)\s+│", shown)
    assert "sensor-001" not in shown


def test_json_holds_the_same_facts_and_names_what_is_unavailable() -> None:
    before = snapshot(0.0, Unavailable(DOWN), stream(100, rejected=4, lag=2))
    after = snapshot(2.0, Unavailable(DOWN), stream(300, rejected=6, lag=5))
    facts = json.loads(json.dumps(frame_json(between(before, after), sensors=1, silent_after_s=1.0)))
    assert facts["interval_s"] == 2.0
    assert facts["stages"]["stream_read"] == {"per_s": 100.0, "total": 300}
    assert facts["stages"]["mqtt_received"] == {"per_s": None, "total": None}
    assert facts["kafka_lag"] == 5
    assert facts["dead_letters"] == {
        "total": 6,
        "per_s": 1.0,
        "bridge": None,
        "stream": {"not_json": 6},
        "rejects_last_hour": 7,
    }
    assert facts["bridge"] is None
    assert facts["stream"]["queries"] == {"readings": "active", "aggregates": "idle"}
    assert facts["sensors"]["with_readings"] == 2 and facts["sensors"]["silent"] == 1
    assert [s["sensor_id"] for s in facts["sensors"]["shown"]] == ["sensor-002"]
    assert facts["sensors"]["shown"][0]["time"] == "2026-11-28T14:03:20.800000+00:00"
    assert facts["unavailable"] == {"bridge": DOWN}
