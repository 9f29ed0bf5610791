"""The PromQL of the dashboards, Grafana alerts and Prometheus rules against what the processes really export.

Both processes of the session's pipeline are scraped: every metric an expression names must be one of
theirs (or a recording rule's, or Prometheus' own `up`). Then a real Prometheus (the Debian package's
binary) loads the exported configuration, scrapes them, and evaluates every expression and rule.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from sensorpipe.monitoring.grafana import export_grafana
from sensorpipe.monitoring.prometheus_export import RECORDINGS, export_prometheus
from sensorpipe.monitoring.promql import PROMETHEUS_OWN
from sensorpipe.monitoring.scrape import scrape
from tests.grafana_support import expressions
from tests.pipeline_support import MALFORMED_RATIO, READINGS, Pipeline
from tests.support import free_port

pytestmark = pytest.mark.integration

TIMEOUT_S = 60


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


@pytest.fixture(scope="module")
def exports(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("exports")
    settings = pipeline.settings.model_copy(
        update={"monitoring": pipeline.settings.monitoring.model_copy(update={"scrape_interval_s": 1})}
    )
    export_grafana(settings, root / "grafana")
    export_prometheus(settings, root / "prometheus")
    return root / "grafana", root / "prometheus"


def test_every_expression_names_only_metrics_the_processes_export(
    pipeline: Pipeline, exports: tuple[Path, Path]
) -> None:
    bridge = scrape("127.0.0.1", pipeline.bridge.metrics_port)
    stream = scrape("127.0.0.1", pipeline.stream_metrics_port)
    known = bridge.names | stream.names | {r.record for r in RECORDINGS} | PROMETHEUS_OWN
    latencies = stream.total("sensorpipe_stream_reading_latency_seconds_count") or 0
    assert latencies >= READINGS * (1 - 2 * MALFORMED_RATIO), "every stored reading's latency is counted"
    assert "sensorpipe_bridge_dead_lettered_total" in bridge.names, "declared families count before their first sample"
    found = expressions(*exports)
    for where, expr in found.items():
        unknown = metric_names(expr) - known
        assert not unknown, f"{where} names metrics nobody exports: {sorted(unknown)}"
    named = set().union(*(metric_names(e) for e in found.values()))
    assert {"sensorpipe_bridge_received_total", "sensorpipe_stream_kafka_lag_offsets"} <= named


class Prometheus:
    def __init__(self, config: Path, data: Path) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: `scripts/bootstrap.sh --test` installs it (Debian package prometheus)"
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as e:  # Prometheus answers a bad query with 400/422 and says why
            raise AssertionError(f"{params}: {e.read().decode()}") from e
        assert body["status"] == "success", body
        return body["data"]

    def wait(self, condition: str, check: Any) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                if check():
                    return
            except OSError:
                pass
            assert self.process.poll() is None, (
                f"prometheus exited: {self.process.stderr.read() if self.process.stderr else ''}"
            )
            assert time.monotonic() < deadline, f"no {condition} within {TIMEOUT_S} s"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def prometheus(exports: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(exports[1] / "prometheus.yml", tmp_path_factory.mktemp("tsdb"))
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(30)


def test_a_real_prometheus_scrapes_both_and_evaluates_every_expression_and_rule(
    prometheus: Prometheus, exports: tuple[Path, Path]
) -> None:
    def targets_up() -> bool:
        active = prometheus.api("targets")["activeTargets"]
        return len(active) == 2 and all(t["health"] == "up" for t in active)

    prometheus.wait("two healthy targets", targets_up)
    stored = RECORDINGS[0].record
    prometheus.wait(f"{stored} recorded", lambda: bool(prometheus.api("query", query=stored)["result"]))

    for expr in expressions(*exports).values():
        prometheus.api("query", query=expr)  # an evaluation error fails the call, with Prometheus' message
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 13
    assert all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]
    firing = [r["name"] for r in rules if r["type"] == "alerting" and r["state"] == "firing"]
    assert not firing, f"alerts fire on a healthy pipeline: {firing}"
