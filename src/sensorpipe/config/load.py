"""Loading the effective settings: flags, environment, `sensorpipe.toml`, defaults, then the secure home's logins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sensorpipe.config.logins import with_stack_credentials
from sensorpipe.config.settings import Settings, build_settings


def load_settings(overrides: dict[str, dict[str, Any]] | None = None, config_file: Path | None = None) -> Settings:
    """Build the effective settings; `overrides` are command-line flags, nested by section.

    A secure stack home adds its logins where nothing explicit was given (`config.logins`).
    """
    return with_stack_credentials(build_settings(overrides, config_file))


__all__ = ["load_settings"]
