"""`sensorpipe grafana export DIR`: Grafana's provisioning tree, generated from the settings.

DIR is meant to be Grafana's `provisioning` directory (`/etc/grafana/provisioning`):

    datasources/sensorpipe.yaml            PostgreSQL (read-only role) and Prometheus
    dashboards/sensorpipe.yaml             the provider that loads the dashboards below
    dashboards/sensorpipe/<name>.json      IoT overview, sensor metrics, pipeline health
    alerting/sensorpipe.yaml               silent sensor, dead-letter rate, end-to-end latency
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from sensorpipe.config import Settings
from sensorpipe.monitoring.grafana.alerts import FOLDER, alerting_provisioning
from sensorpipe.monitoring.grafana.dashboards import dashboards
from sensorpipe.monitoring.grafana.datasources import datasources
from sensorpipe.monitoring.provisioning import Written, write_json, write_yaml

COMMAND = "grafana export"
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
"""Where Grafana's packages and image look for provisioning, and where the compose file mounts the export."""
DASHBOARDS_DIR = "dashboards/sensorpipe"


def dashboard_provider(directory: Path) -> dict[str, Any]:
    """Grafana loads the dashboards from files at `directory` (as Grafana sees it) into the sensorpipe folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "sensorpipe",
                "folder": FOLDER,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": str(directory)},
            }
        ],
    }


def export_grafana(settings: Settings, target: Path, seen_at: Path = Path(GRAFANA_PROVISIONING)) -> list[Written]:
    """Write the provisioning tree into `target`, which Grafana will see at `seen_at` (the dashboards' path)."""
    written = [Written(target / "datasources" / "sensorpipe.yaml", "data sources: PostgreSQL, Prometheus")]
    write_yaml(written[-1].path, datasources(settings), COMMAND)
    written.append(Written(target / "dashboards" / "sensorpipe.yaml", "dashboard provider"))
    write_yaml(written[-1].path, dashboard_provider(seen_at / DASHBOARDS_DIR), COMMAND)
    for name, board in dashboards(settings).items():
        written.append(Written(target / DASHBOARDS_DIR / f"{name}.json", f"dashboard: {board.title}"))
        write_json(written[-1].path, board, JSONEncoder)
    written.append(Written(target / "alerting" / "sensorpipe.yaml", "alert rules"))
    write_yaml(written[-1].path, alerting_provisioning(settings), COMMAND)
    return written


__all__ = ["export_grafana"]
