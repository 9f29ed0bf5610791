"""`sensorpipe bench` for a few seconds at a low rate, on its own stack, as a user runs it.

Timings are not asserted (they belong to the bench's figures, not to tests): the test checks that the
report is complete, that its loss and duplicate counts are what the real database and lake hold, and
that a reading removed from the database afterwards is counted as lost by the same accounting.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from sensorpipe.bench.ceilings import BENCH_PREFIX, LAKE_PREFIX
from sensorpipe.bench.report import BenchReport, from_json, targets
from sensorpipe.bench.runner import account_sinks
from sensorpipe.clients.kafka_client import client_config
from sensorpipe.config import Settings, load_settings
from sensorpipe.stack import Stack
from sensorpipe.storage.s3 import s3_client
from tests.support import PORT_OFFSET, STACK_BASES

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

BASE_PORT = STACK_BASES["bench"] + PORT_OFFSET  # clear of every stack scripts/test runs beside it


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BenchReport, Settings, Path]]:
    """One short bench run with `--keep`, so the test can read the sinks it counted; torn down at the end."""
    plot = tmp_path_factory.mktemp("bench") / "bench.png"
    command = [
        *(sys.executable, "-m", "sensorpipe", "bench", "--rate", "200", "--duration", "8", "--sensors", "5"),
        *("--batch", "5", "--ceiling-duration", "1", "--warmup", "2", "--base-port", str(BASE_PORT)),
        *("--keep", "--json", "--plot", str(plot)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    home = next(
        (Path(line.split("home: ")[1].split(" ")[0]) for line in done.stderr.splitlines() if "home: " in line), None
    )
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        assert home is not None, done.stderr[-3000:]
        settings = load_settings(config_file=home / "sensorpipe.toml")
        yield from_json(done.stdout), settings, plot
    finally:
        if home is not None:
            Stack(load_settings(config_file=home / "sensorpipe.toml")).down(purge=True)
            shutil.rmtree(home, ignore_errors=True)


def test_the_report_has_both_modes_every_ceiling_and_every_target(
    bench_run: tuple[BenchReport, Settings, Path],
) -> None:
    report, _, plot = bench_run
    assert [m.batch for m in report.modes] == [1, 5]
    for mode in report.modes:
        assert mode.offered_rate == 200
        assert mode.accounting.acknowledged > 1000  # about 200 readings/s for 8 s
        assert mode.latency.count > 0 and mode.latency.p99_s is not None
        assert mode.cold_start_s is not None and mode.cold_start_s > 0
        names = {c.name for c in mode.components}
        assert {"mqtt", "kafka", "postgres", "s3", "bridge", "stream"} <= names
        assert all(c.rss_bytes > 0 for c in mode.components)
        assert {s.name for s in mode.rates} == {
            "mqtt (bridge received)",
            "kafka (bridge forwarded)",
            "database",
            "lake",
        }
        assert mode.window is not None
        # A fixed rate is judged as a --max step is: the verdict beside its landing rate and end backlog.
        (step,) = mode.steps
        assert step.kind == "fixed" and step.rate == 200
        assert step.landed > 0 and step.end_backlog is not None
        assert mode.sustained_db == step.landed
        assert mode.step_length_s is not None and step.load_s >= mode.step_length_s
        assert mode.stream_cpu_per_10k is not None and mode.stream_cpu_per_10k > 0
        assert mode.lake_at_start is not None
    # Batch 5 starts on the lake batch 1 filled.
    first, second = report.modes
    lake = second.lake_at_start
    assert lake is not None and lake.rows is not None and lake.rows >= first.accounting.stored_lake
    assert {(c.stage, c.batch) for c in report.ceilings} == {
        *((stage, batch) for stage in ("mqtt", "kafka_produce", "kafka_consume") for batch in (1, 5)),
        ("postgres_copy", None),
        ("parquet_write", None),
    }
    assert all(c.readings_per_s > 0 for c in report.ceilings)
    checks = targets(report)
    assert len(checks) == 1 + 2 * 6
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_every_acknowledged_reading_is_counted_once_in_the_database_and_the_lake(
    bench_run: tuple[BenchReport, Settings, Path],
) -> None:
    report = bench_run[0]
    for mode in report.modes:
        a = mode.accounting
        assert (a.stored_db, a.stored_lake) == (a.acknowledged, a.acknowledged)
        assert (a.lost_db, a.lost_lake, a.duplicated_db, a.duplicated_lake) == (0, 0, 0, 0)
        assert a.ok


def test_the_accounting_reads_the_real_sinks(bench_run: tuple[BenchReport, Settings, Path]) -> None:
    report, settings, _ = bench_run
    mode = report.modes[0]
    assert mode.window is not None
    start, end = (datetime.fromtimestamp(t, UTC) for t in mode.window)
    assert account_sinks(settings, start, end, mode.accounting.acknowledged) == mode.accounting
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(
            "delete from sensor_data where (sensor_id, time) in"
            " (select sensor_id, time from sensor_data where time between %s and %s limit 3)",
            (start, end),
        )
    again = account_sinks(settings, start, end, mode.accounting.acknowledged)
    assert (again.lost_db, again.lost_lake, again.stored_db) == (3, 0, mode.accounting.stored_db - 3)
    assert not again.ok


def test_the_ceilings_leave_no_topic_and_no_lake_object_behind(bench_run: tuple[BenchReport, Settings, Path]) -> None:
    settings = bench_run[1]
    topics = AdminClient(client_config(settings.kafka)).list_topics(timeout=10).topics
    assert [name for name in topics if name.startswith(BENCH_PREFIX)] == []
    client = s3_client(settings.s3)
    listing = client.list_objects_v2(Bucket=settings.s3.bucket, Prefix=f"{LAKE_PREFIX}/")
    assert listing.get("Contents", []) == []
    top = client.list_objects_v2(Bucket=settings.s3.bucket, Delimiter="/")
    assert f"{LAKE_PREFIX}/" not in [entry["Prefix"] for entry in top.get("CommonPrefixes", [])]
