"""Problem 10: Grafana's provisioning tree is there and is what `grafana export` makes of the current settings."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from sensorpipe.config import Settings
from sensorpipe.doctor.check import Check, failed, passed
from sensorpipe.monitoring.grafana import export_grafana
from sensorpipe.monitoring.grafana.export import DASHBOARDS_DIR, GRAFANA_PROVISIONING

NAME = "grafana provisioning"


def seen_at(directory: Path) -> Path:
    """Where Grafana sees `directory`: read back from the dashboard provider's path, else Grafana's default."""
    try:
        provider = yaml.safe_load((directory / "dashboards" / "sensorpipe.yaml").read_text())
        path = Path(provider["providers"][0]["options"]["path"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return Path(GRAFANA_PROVISIONING)
    return path.parents[1] if path.as_posix().endswith(DASHBOARDS_DIR) else Path(GRAFANA_PROVISIONING)


def export_command(directory: Path, grafana_dir: Path) -> str:
    extra = "" if grafana_dir == Path(GRAFANA_PROVISIONING) else f" --grafana-dir {grafana_dir}"
    return f"`sensorpipe grafana export {directory}{extra}`"


def check_grafana(directory: Path, settings: Settings) -> Check:
    """Every file `grafana export` would write is in `directory`, byte for byte."""
    grafana_dir = seen_at(directory)
    fix = f"{export_command(directory, grafana_dir)} (then restart Grafana or wait for its 30 s reload)"
    if not directory.is_dir():
        return failed(NAME, f"{directory} does not exist", fix)
    missing: list[str] = []
    stale: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sensorpipe-doctor-") as tmp:
        for written in export_grafana(settings, Path(tmp), grafana_dir):
            relative = written.path.relative_to(tmp)
            present = directory / relative
            if not present.is_file():
                missing.append(str(relative))
            elif present.read_bytes() != written.path.read_bytes():
                stale.append(str(relative))
    if missing or stale:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"not what the current settings give: {', '.join(stale)}"] if stale else []
        return failed(NAME, f"{directory}: {'; '.join(parts)}", fix)
    return passed(NAME, f"{directory} matches the settings (data sources, dashboards, alert rules)")


__all__ = ["check_grafana"]
