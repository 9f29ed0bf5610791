"""Helpers shared by tests: stack homes and config files as a user would write them."""

from __future__ import annotations

import tempfile
from pathlib import Path

TEST_PORTS = {"mqtt": 21883, "kafka": 29092, "kafka_controller": 29093, "postgres": 25432, "s3": 28333}


def write_config(home: Path, ports: dict[str, int] = TEST_PORTS, lake: str = "s3") -> Path:
    """A sensorpipe.toml for a stack in `home` on `ports`: what a user would write by hand."""
    config = home / "sensorpipe.toml"
    config.write_text(
        f"""\
[stack]
home = "{home}"

[mqtt]
port = {ports["mqtt"]}

[kafka]
bootstrap_servers = "127.0.0.1:{ports["kafka"]}"
controller_port = {ports["kafka_controller"]}

[postgres]
port = {ports["postgres"]}

[s3]
endpoint = "http://127.0.0.1:{ports["s3"]}"

[lake]
backend = "{lake}"
"""
    )
    return config


def fresh_home(prefix: str) -> Path:
    """A new directory every user can traverse (PostgreSQL runs as `postgres` when we are root)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    return home
