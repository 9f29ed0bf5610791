"""Grafana's data sources for sensorpipe: the database through the read-only role, and Prometheus."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.models.dashboard import DataSourceRef

from sensorpipe.config import Settings
from sensorpipe.config.env import env_names
from sensorpipe.monitoring.grafana.sql_query import POSTGRES_TYPE

PROMETHEUS_TYPE = "prometheus"
POSTGRES = DataSourceRef(type_val=POSTGRES_TYPE, uid="sensorpipe-postgres")
PROMETHEUS = DataSourceRef(type_val=PROMETHEUS_TYPE, uid="sensorpipe-prometheus")
"""Fixed uids: dashboards and alert rules name their data source by uid, whatever Grafana instance loads them."""

READER_PASSWORD_ENV = env_names("postgres", "reader_password")[0]
"""Grafana reads the password from its environment at start: no secret is ever written to a file."""


def datasources(settings: Settings) -> dict[str, Any]:
    """The `apiVersion: 1` provisioning document of both data sources."""
    pg = settings.postgres
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "sensorpipe PostgreSQL",
                "uid": POSTGRES.uid,
                "type": POSTGRES_TYPE,
                "access": "proxy",
                "url": f"{pg.host}:{pg.port}",
                "user": pg.reader_user,
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "database": pg.database,
                    "sslmode": "disable",
                    "postgresVersion": 1500,
                    "timescaledb": False,
                    "maxOpenConns": 5,
                },
                "secureJsonData": {"password": f"${{{READER_PASSWORD_ENV}}}"},
            },
            {
                "name": "sensorpipe Prometheus",
                "uid": PROMETHEUS.uid,
                "type": PROMETHEUS_TYPE,
                "access": "proxy",
                "url": settings.monitoring.prometheus_url,
                "isDefault": False,
                "editable": False,
                "jsonData": {"timeInterval": f"{settings.monitoring.scrape_interval_s}s"},
            },
        ],
    }


__all__ = ["POSTGRES", "PROMETHEUS", "READER_PASSWORD_ENV", "datasources"]
