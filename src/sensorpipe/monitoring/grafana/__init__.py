"""Grafana provisioning generated from the settings: data sources, dashboards, alert rules."""

from sensorpipe.monitoring.grafana.export import export_grafana

__all__ = ["export_grafana"]
