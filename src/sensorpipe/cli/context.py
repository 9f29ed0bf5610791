"""What every command gets: the root options, turned into one `Settings` on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from sensorpipe.cli.console import fail
from sensorpipe.config import Settings, load_settings
from sensorpipe.config.settings import ConfigFileError, merge_overrides


@dataclass
class AppContext:
    config_file: Path | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    root_args: list[str] = field(default_factory=list)
    """The root options as given (`--config`, `--set`, `--home`, `-v`), for child processes of `run`."""

    def settings(self, **flags: dict[str, Any]) -> Settings:
        """Effective settings; `flags` are the command's own options, nested by section."""
        given = {section: {k: v for k, v in values.items() if v is not None} for section, values in flags.items()}
        try:
            return load_settings(merge_overrides(self.overrides, given), self.config_file)
        except ConfigFileError as e:
            fail(str(e))
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
            fail(f"invalid configuration: {problems}")


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    return obj
