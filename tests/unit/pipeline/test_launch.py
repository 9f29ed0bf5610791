"""What `sensorpipe run` starts and in which order, without starting it."""

from __future__ import annotations

import signal
import sys
from datetime import UTC, datetime

from sensorpipe.cli.run_cmd import progress_line
from sensorpipe.monitoring.top import Observed, Snapshot, StreamFigures, Unavailable
from sensorpipe.pipeline.launch import STOP_ORDER, RunOptions, SimulatorCommand, child_specs
from sensorpipe.pipeline.supervisor import ChildSpec

ROOT = ["--config", "/etc/sensorpipe.toml", "--set", "kafka.topic=plant-7"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def by_name(specs: list[ChildSpec]) -> dict[str, ChildSpec]:
    return {spec.name: spec for spec in specs}


def test_children_repeat_the_root_options_so_they_share_the_settings() -> None:
    specs = by_name(child_specs(ROOT, RunOptions(sensors=5, rate=200)))
    assert set(specs) == {"stream", "bridge", "simulator"}
    assert specs["stream"].command() == [sys.executable, "-m", "sensorpipe", *ROOT, "stream"]
    assert specs["bridge"].command() == [sys.executable, "-m", "sensorpipe", *ROOT, "bridge"]
    assert specs["simulator"].command()[-5:] == ["simulate", "--sensors", "5", "--rate", "200"]


def test_without_simulate_there_is_no_simulator() -> None:
    assert set(by_name(child_specs(ROOT, RunOptions()))) == {"stream", "bridge"}


def test_producers_stop_first_and_only_the_simulator_may_finish() -> None:
    assert STOP_ORDER == ("simulator", "bridge", "stream")
    specs = by_name(child_specs(ROOT, RunOptions(sensors=1)))
    assert [name for name, spec in specs.items() if spec.finishes] == ["simulator"]
    # The stream job's JVM must not get the signal: the driver stops Spark after its running batch.
    assert not specs["stream"].signal_group and specs["stream"].stop_signal is signal.SIGTERM
    assert specs["stream"].stop_timeout_s > specs["bridge"].stop_timeout_s


def test_a_restarted_simulator_publishes_only_for_the_time_that_was_left() -> None:
    clock = Clock()
    command = SimulatorCommand(["sensorpipe"], RunOptions(sensors=2, rate=10, duration_s=30), clock)
    assert command()[-2:] == ["--duration", "30.0"]
    clock.now += 12.5
    assert command()[-2:] == ["--duration", "17.5"]
    clock.now += 60
    assert command()[-2:] == ["--duration", "1.0"]  # never 0: that would be a usage error


def test_the_progress_line_shows_what_answered() -> None:
    stream = StreamFigures(
        read=5_010,
        sink_rows={"database": 4_990, "lake": 4_990},
        rejected={"not_json": 20},
        kafka_lag=12,
        queries={"readings": "active"},
        batch_duration=Observed(),
        end_to_end=Observed(),
    )
    down = Unavailable("no metrics")
    snapshot = Snapshot(datetime.now(UTC), 0.0, bridge=down, stream=stream, database=down)
    assert progress_line(snapshot) == "stored 4,990 · lake 4,990 · lag 12"
    nothing = Snapshot(datetime.now(UTC), 0.0, bridge=down, stream=down, database=down)
    assert progress_line(nothing) == "waiting for the bridge's and the stream job's metrics"
