"""`sensorpipe prometheus export`: promtool accepts the files, every PromQL expression parses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from sensorpipe.config import Settings
from sensorpipe.config.settings import BridgeSettings, MonitoringSettings
from sensorpipe.monitoring.grafana import export_grafana
from sensorpipe.monitoring.prometheus_export import export_prometheus
from tests.grafana_support import expressions
from tests.support import sensorpipe


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: `scripts/bootstrap.sh --test` installs it (Debian package prometheus)"
    return path


def test_promtool_accepts_the_configuration_and_its_rules(tmp_path: Path) -> None:
    export_prometheus(Settings(), tmp_path)
    checked = subprocess.run(
        [promtool(), "check", "config", str(tmp_path / "prometheus.yml")], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


def test_every_expression_of_dashboards_alerts_and_rules_parses(tmp_path: Path) -> None:
    export_grafana(Settings(), tmp_path / "grafana")
    export_prometheus(Settings(), tmp_path / "prometheus")
    found = expressions(tmp_path / "grafana", tmp_path / "prometheus")
    assert len(found) >= 20
    for where, expr in found.items():
        promql_parser.parse(expr)  # raises on a syntax error, naming it
        assert expr.count("(") == expr.count(")"), where


def test_a_broken_expression_is_what_promtool_and_the_parser_refuse(tmp_path: Path) -> None:
    """The checks above can fail: the same tools reject a rule file with one bad expression."""
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r:x", "expr": "sum(rate(x[5m])"}]}]}))
    checked = subprocess.run([promtool(), "check", "rules", str(bad)], check=False, capture_output=True, text=True)
    assert checked.returncode != 0
    try:
        promql_parser.parse("sum(rate(x[5m])")
    except ValueError:
        return
    raise AssertionError("the parser accepted an unbalanced expression")


def test_targets_come_from_the_metrics_settings_or_the_monitoring_override(tmp_path: Path) -> None:
    export_prometheus(Settings(bridge=BridgeSettings(metrics_port=19310)), tmp_path / "local")
    local: Any = yaml.safe_load((tmp_path / "local" / "prometheus.yml").read_text())
    assert {job["job_name"]: job["static_configs"][0]["targets"] for job in local["scrape_configs"]} == {
        "sensorpipe-bridge": ["127.0.0.1:19310"],
        "sensorpipe-stream": ["127.0.0.1:9311"],
    }
    docker = Settings(
        monitoring=MonitoringSettings(bridge_targets="bridge-1:9310, bridge-2:9310", stream_targets="stream:9311")
    )
    export_prometheus(docker, tmp_path / "docker")
    compose: Any = yaml.safe_load((tmp_path / "docker" / "prometheus.yml").read_text())
    assert compose["scrape_configs"][0]["static_configs"][0]["targets"] == ["bridge-1:9310", "bridge-2:9310"]
    assert compose["rule_files"] == ["rules/*.yml"]


def test_thresholds_come_from_the_settings_and_export_is_deterministic(tmp_path: Path) -> None:
    for run in ("a", "b"):
        result = sensorpipe("--set", "monitoring.max_latency_s=3.5", "prometheus", "export", str(tmp_path / run))
        assert result.returncode == 0, result.stderr
    first, second = ((tmp_path / run / "rules" / "sensorpipe.yml").read_text() for run in ("a", "b"))
    assert first == second
    rules: Any = yaml.safe_load(first)
    alerts = {rule["alert"]: rule for rule in rules["groups"][1]["rules"]}
    assert alerts["SensorpipeLatencyHigh"]["expr"] == "sensorpipe:reading_latency_seconds:p99_5m > 3.5"
    assert (tmp_path / "a" / "prometheus.yml").read_text() == (tmp_path / "b" / "prometheus.yml").read_text()
