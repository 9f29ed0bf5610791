"""`sensorpipe config show`: what users and scripts see, secrets never among it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sensorpipe.cli import app

runner = CliRunner()


def test_config_show_json_masks_secrets_and_applies_flags(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv("POSTGRES_PASSWORD", "hunter2-pg")
    clean_env.setenv("MINIO_SECRET_KEY", "hunter2-s3")
    clean_env.setenv("SENSORPIPE_MQTT_PASSWORD", "hunter2-mqtt")
    result = runner.invoke(app, ["--set", "mqtt.port=1999", "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["mqtt"]["port"] == 1999
    assert shown["postgres"]["password"] == "**********"
    assert shown["s3"]["secret_key"] == "**********"
    assert shown["mqtt"]["password"] == "**********"
    assert "hunter2" not in result.output


def test_config_show_table_masks_secrets(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv("POSTGRES_PASSWORD", "hunter2-pg")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "POSTGRES_PASSWORD" in result.output
    assert "hunter2" not in result.output


def test_bad_flag_is_a_clear_error(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    result = runner.invoke(app, ["--set", "mqtt.port=notanumber", "config", "show"])
    assert result.exit_code == 1
    assert "invalid configuration: mqtt.port" in result.output
    assert "Traceback" not in result.output
