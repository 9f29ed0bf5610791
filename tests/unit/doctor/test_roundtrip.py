"""`sensorpipe stack check`'s round trips as checks of doctor's runner: its lines, `--json` and exit code."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from sensorpipe.cli import build_app
from sensorpipe.config import Settings
from sensorpipe.doctor import roundtrip
from sensorpipe.doctor.roundtrip import RoundTripError, roundtrip_checks

REFUSED = "MQTT broker at 127.0.0.1:1 refused the connection: is `sensorpipe stack up` running?"


def _refused(_settings: Settings) -> str:
    raise RoundTripError(REFUSED)


def _crashes(_settings: Settings) -> str:
    raise ValueError("boom")


def _carried(_settings: Settings) -> str:
    return "carried [and back]"


def test_the_round_trips_fit_the_lake_and_spark_only_on_request() -> None:
    assert [s.name for s in roundtrip_checks(Settings())] == ["mqtt", "kafka", "postgres", "s3"]
    local = roundtrip_checks(Settings(lake={"backend": "local"}), spark=True)
    assert [s.name for s in local] == ["mqtt", "kafka", "postgres", "lake", "spark"]
    assert local[-1].timeout_s > local[0].timeout_s  # Spark starts a JVM first


def test_each_service_gets_its_line_and_one_failure_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch, clean_env: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roundtrip, "mqtt_roundtrip", _refused)
    monkeypatch.setattr(roundtrip, "kafka_roundtrip", _crashes)
    monkeypatch.setattr(roundtrip, "postgres_roundtrip", _carried)
    monkeypatch.setattr(roundtrip, "s3_roundtrip", _carried)

    result = CliRunner().invoke(build_app(), ["stack", "check", "--lake", "s3", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [list(c) for c in report["checks"]] == [["service", "ok", "detail", "seconds"]] * 4
    assert [(c["service"], c["ok"]) for c in report["checks"]] == [
        ("mqtt", False),
        ("kafka", False),
        ("postgres", True),
        ("s3", True),
    ]
    assert report["checks"][0]["detail"] == REFUSED
    assert report["checks"][1]["detail"] == "the check itself failed: ValueError: boom"

    human = CliRunner().invoke(build_app(), ["stack", "check", "--lake", "s3"])
    assert human.exit_code == 1
    lines = human.stdout.strip().splitlines()
    assert len(lines) == 4, lines
    assert re.fullmatch(rf"✗ mqtt      {re.escape(REFUSED)} \(\d+ ms\)", lines[0]), lines[0]
    crashed = (
        "✗ kafka     the check itself failed: ValueError: boom → a bug in `sensorpipe stack check`: run it with -v"
    )
    assert lines[1].startswith(crashed), lines[1]
    assert re.fullmatch(r"✓ postgres  carried \[and back\] \(\d+ ms\)", lines[2]), lines[2]


def test_all_round_trips_back_exit_0(monkeypatch: pytest.MonkeyPatch, clean_env: pytest.MonkeyPatch) -> None:
    for name in ("mqtt_roundtrip", "kafka_roundtrip", "postgres_roundtrip", "local_lake_roundtrip"):
        monkeypatch.setattr(roundtrip, name, _carried)
    result = CliRunner().invoke(build_app(), ["stack", "check", "--lake", "local", "--json"])
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["service"] for c in report["checks"]] == ["mqtt", "kafka", "postgres", "lake"]
