"""`sensorpipe config show`: what users and scripts see, secrets never among it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sensorpipe.cli import COMMANDS, build_app, invoked_command

runner = CliRunner()


def test_config_show_json_masks_secrets_and_applies_flags(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv("POSTGRES_PASSWORD", "hunter2-pg")
    clean_env.setenv("MINIO_SECRET_KEY", "hunter2-s3")
    clean_env.setenv("SENSORPIPE_MQTT_PASSWORD", "hunter2-mqtt")
    result = runner.invoke(build_app(), ["--set", "mqtt.port=1999", "config", "show", "--json"])
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
    result = runner.invoke(build_app(), ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "POSTGRES_PASSWORD" in result.output
    assert "hunter2" not in result.output


def test_bad_flag_is_a_clear_error(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    result = runner.invoke(build_app(), ["--set", "mqtt.port=notanumber", "config", "show"])
    assert result.exit_code == 1
    assert "invalid configuration: mqtt.port" in result.output
    assert "Traceback" not in result.output


def test_the_command_is_found_after_root_options_and_their_values() -> None:
    assert invoked_command(["--config", "x.toml", "--set", "a.b=1", "-v", "stack", "up"]) == "stack"
    assert invoked_command(["--config=x.toml", "-c", "y.toml", "run", "--simulate", "3"]) == "run"
    assert invoked_command(["--version"]) is None


def test_every_command_is_listed_in_the_help_and_one_command_runs_on_its_own() -> None:
    listed = CliRunner().invoke(build_app(), ["--help"]).stdout
    assert all(name in listed for name in COMMANDS)
    alone = CliRunner().invoke(build_app("config"), ["--set", "mqtt.port=1999", "config", "show", "--json"])
    assert alone.exit_code == 0 and json.loads(alone.stdout)["mqtt"]["port"] == 1999
