"""`sensorpipe doctor`'s own logic, without services: the runner, parsing, hints, output and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter
from typer.testing import CliRunner

from sensorpipe.cli import build_app
from sensorpipe.cli.doctor_cmd import check_line, summary
from sensorpipe.config import Settings
from sensorpipe.doctor import Check, CheckSpec, run_checks
from sensorpipe.doctor.check import failed, passed, split_fix
from sensorpipe.doctor.environment import doctor_checks
from sensorpipe.doctor.grafana import check_grafana
from sensorpipe.doctor.metrics import check_bridge_metrics
from sensorpipe.doctor.network import Endpoint, endpoints, probe, unresolved_fix
from sensorpipe.doctor.runtime import java_major
from sensorpipe.monitoring.grafana import export_grafana
from sensorpipe.monitoring.metrics_server import serve_metrics
from tests.support import free_port

SETTINGS = Settings()


def _ok(_settings: Settings) -> Check:
    return passed("ignored", "fine")


def _bad(_settings: Settings) -> Check:
    return failed("ignored", "broken", "repair it")


def _raises(_settings: Settings) -> Check:
    raise ValueError("boom")


def test_a_raising_check_is_a_failure_and_the_others_still_run() -> None:
    specs = [CheckSpec("first", _ok), CheckSpec("crashes", _raises, problem=4), CheckSpec("last", _bad)]
    results = run_checks(specs, SETTINGS, command="doctor")
    assert [(c.name, c.ok) for c in results] == [("first", True), ("crashes", False), ("last", False)]
    crashed = results[1]
    assert crashed.detail == "the check itself failed: ValueError: boom"
    assert crashed.fix is not None and "sensorpipe doctor" in crashed.fix
    assert crashed.problem == 4
    assert results[2].fix == "repair it"


def test_a_hanging_check_times_out_without_holding_the_others() -> None:
    release = threading.Event()

    def hangs(_settings: Settings) -> Check:
        release.wait(10)
        return _ok(_settings)

    start = time.monotonic()
    try:
        results = run_checks(
            [CheckSpec("hangs", hangs, timeout_s=0.2), CheckSpec("quick", _ok)], SETTINGS, command="stack check"
        )
    finally:
        release.set()
    assert time.monotonic() - start < 5
    assert [(c.name, c.ok) for c in results] == [("hangs", False), ("quick", True)]
    assert results[0].detail == "no answer within 0.2s"
    assert results[0].fix is not None and results[0].fix.endswith("then run stack check again")


def test_each_result_is_reported_in_order_as_soon_as_it_and_those_before_it_are_known() -> None:
    """The progress a terminal shows: `last` finishes only once `first` was reported, within its timeout."""
    reported = threading.Event()
    seen: list[str] = []

    def last(settings: Settings) -> Check:
        assert reported.wait(5)
        return _ok(settings)

    def report(check: Check) -> None:
        seen.append(check.name)
        reported.set()

    specs = [CheckSpec("first", _ok), CheckSpec("last", last, timeout_s=2), CheckSpec("quick", _ok)]
    results = run_checks(specs, SETTINGS, command="doctor", on_result=report)
    assert seen == ["first", "last", "quick"]
    assert all(c.ok for c in results), results


def test_a_check_whose_dependency_failed_is_skipped() -> None:
    calls: list[str] = []

    def counted(settings: Settings) -> Check:
        calls.append("ran")
        return _ok(settings)

    specs = [
        CheckSpec("login", counted, needs=("endpoint",)),
        CheckSpec("endpoint", _bad),
        CheckSpec("other", counted, needs=("fine",)),
        CheckSpec("fine", _ok),
    ]
    results = {c.name: c for c in run_checks(specs, SETTINGS, command="doctor")}
    assert results["login"].skipped and not results["login"].ok
    assert results["login"].detail == "not checked: endpoint failed"
    assert results["other"].ok and not results["other"].skipped
    assert calls == ["ran"]


def test_every_check_has_a_unique_name_and_needs_only_earlier_known_checks() -> None:
    specs = doctor_checks(Settings(kafka={"bootstrap_servers": "a:9092,b:9093"}))
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    for index, spec in enumerate(specs):
        assert set(spec.needs) <= set(names[:index]), spec.name  # no cycle can deadlock the runner
    assert {"endpoint kafka a:9092", "endpoint kafka b:9093"} <= set(names)
    assert next(s for s in specs if s.name == "topic sensor-data").needs == (
        "endpoint kafka a:9092",
        "endpoint kafka b:9093",
    )


def test_a_local_lake_has_no_s3_endpoint() -> None:
    names = [s.name for s in doctor_checks(Settings(lake={"backend": "local"}))]
    assert not [n for n in names if n.startswith("endpoint s3")]
    assert "lake bucket" in names


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2-ea"', 11),
        ("bash: java: command not found", None),
    ],
)
def test_java_major(output: str, major: int | None) -> None:
    assert java_major(output) == major


def test_split_fix_cuts_at_the_last_colon_outside_parentheses() -> None:
    assert split_fix(
        "PostgreSQL at 127.0.0.1:5432 is unreachable as u (connection failed: refused): is `stack up` running?"
    ) == ("PostgreSQL at 127.0.0.1:5432 is unreachable as u (connection failed: refused)", "is `stack up` running?")
    assert split_fix("no fix here") == ("no fix here", "see the message")


def test_compose_service_names_get_the_docker_hint() -> None:
    fix = unresolved_fix(Endpoint("kafka", "kafka", 29092, "kafka.bootstrap_servers (KAFKA_BOOTSTRAP_SERVERS)"))
    assert fix.startswith(
        "kafka resolves only inside the compose network; from this machine use localhost:9092, see deploy/README.md"
    )
    minio = unresolved_fix(Endpoint("s3", "minio", 9000, "s3.endpoint (MINIO_ENDPOINT)"))
    assert "use localhost:9000" in minio
    other = unresolved_fix(Endpoint("postgres", "db.example", 5432, "postgres.host/postgres.port"))
    assert other == "check the host name (DNS, /etc/hosts) or set postgres.host/postgres.port"


def test_a_closed_port_is_refused_with_the_setting_to_change() -> None:
    port = free_port()
    check = probe(Endpoint("mqtt", "127.0.0.1", port, "mqtt.host/mqtt.port"))
    assert not check.ok
    assert check.detail == f"nothing listens on 127.0.0.1:{port} (127.0.0.1): connection refused"
    assert check.fix is not None and "mqtt.host/mqtt.port" in check.fix


def test_metrics_of_a_bridge_and_of_another_program() -> None:
    for metric, expected in (("sensorpipe_bridge_received", True), ("someone_else", False)):
        registry = CollectorRegistry()
        Counter(metric, "help", registry=registry).inc()
        port = free_port()
        server = serve_metrics(registry, "127.0.0.1", port, "bridge.metrics_port")
        try:
            settings = Settings(bridge={"metrics_port": port})
            check = check_bridge_metrics(settings)
        finally:
            server.shutdown()
            server.server_close()
        assert check.ok is expected, check
        if not expected:
            assert "another program holds the port" in check.detail


def test_metrics_port_unset_passes() -> None:
    assert check_bridge_metrics(Settings(bridge={"metrics_port": None})).ok


def test_lines_and_summary() -> None:
    good = Check("java", True, "Java 17 at /usr/bin/java")
    bad = Check("topic x", False, "missing on k:9092", "`sensorpipe topics create`")
    skipped = Check("login", False, "not checked: endpoint failed", "fix endpoint first", skipped=True)
    assert check_line(good) == "[green]✓[/] [bold]java[/]  Java 17 at /usr/bin/java"
    assert check_line(bad).endswith("missing on k:9092 [yellow]→ `sensorpipe topics create`[/]")
    assert "→" not in check_line(skipped)
    assert summary([good, bad, skipped]) == "1 passed, 1 failed, 1 not checked"


def _outcome(ok: bool, _settings: Settings) -> Check:
    return passed("ignored", "d") if ok else failed("ignored", "d", "f")


@pytest.mark.parametrize(("results", "code"), [([True, True], 0), ([True, False], 1)])
def test_exit_code_and_json(monkeypatch: pytest.MonkeyPatch, results: list[bool], code: int) -> None:
    specs = [CheckSpec(f"c{i}", partial(_outcome, ok), problem=2) for i, ok in enumerate(results)]
    monkeypatch.setattr("sensorpipe.doctor.environment.doctor_checks", lambda _settings, _grafana: specs)
    result = CliRunner().invoke(build_app(), ["doctor", "--json"])
    assert result.exit_code == code
    assert [c["ok"] for c in json.loads(result.stdout)] == results
    assert set(json.loads(result.stdout)[0]) == {"name", "ok", "detail", "fix", "problem", "skipped", "seconds"}
    human = CliRunner().invoke(build_app(), ["doctor"])
    assert human.exit_code == code
    assert human.stdout.strip().splitlines()[-1] == f"{results.count(True)} passed, {results.count(False)} failed"


def test_endpoints_of_every_configured_service() -> None:
    settings = Settings(
        kafka={"bootstrap_servers": "kafka:29092, [::1]:9094,broker"},
        s3={"endpoint": "https://s3.example.com"},
        mqtt={"host": "mosquitto"},
    )
    assert [(e.service, e.host, e.port) for e in endpoints(settings)] == [
        ("mqtt", "mosquitto", 1883),
        ("kafka", "kafka", 29092),
        ("kafka", "::1", 9094),
        ("kafka", "broker", 9092),
        ("postgres", "127.0.0.1", 5432),
        ("s3", "s3.example.com", 443),
    ]


def test_grafana_provisioning_present_stale_or_missing(tmp_path: Path) -> None:
    settings = Settings()
    tree = tmp_path / "provisioning"
    assert not check_grafana(tree, settings).ok
    export_grafana(settings, tree, Path("/srv/grafana"))
    check = check_grafana(tree, settings)
    assert check.ok, check

    moved = Settings(monitoring={"prometheus_url": "http://prometheus:9090"})
    stale = check_grafana(tree, moved)
    assert not stale.ok
    assert stale.detail == f"{tree}: not what the current settings give: datasources/sensorpipe.yaml"
    assert stale.fix is not None
    assert stale.fix.startswith(f"`sensorpipe grafana export {tree} --grafana-dir /srv/grafana`")

    (tree / "alerting" / "sensorpipe.yaml").unlink()
    assert "missing alerting/sensorpipe.yaml" in check_grafana(tree, settings).detail
    names = [s.name for s in doctor_checks(settings, tree)]
    assert names[-1] == "grafana provisioning"
    assert "grafana provisioning" not in [s.name for s in doctor_checks(settings)]


def _loaded_by(imports: str, modules: str) -> str:
    """What a fresh interpreter has in sys.modules, among `modules` (an expression), after `import imports`."""
    code = f"import sys, {imports}; print(sorted(m for m in sys.modules if {modules}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_the_cli_loads_the_checks_only_when_a_command_runs_them() -> None:
    """`sensorpipe --help` imports every command module: doctor's and stack's load the framework, not the checks."""
    loaded = _loaded_by("sensorpipe.cli.doctor_cmd, sensorpipe.cli.stack_cmd", "m.startswith('sensorpipe.doctor')")
    assert loaded == "['sensorpipe.doctor', 'sensorpipe.doctor.check', 'sensorpipe.doctor.runner']"
    heavy = "m in ('pydantic', 'psycopg', 'boto3', 'confluent_kafka', 'pyspark')"
    assert _loaded_by("sensorpipe.doctor", heavy) == "[]"


def test_doctors_checks_do_not_import_spark() -> None:
    """doctor must answer quickly: its checks (the records' encodings among them) never start or import Spark."""
    assert _loaded_by("sensorpipe.doctor.environment", "m == 'pyspark'") == "[]"
