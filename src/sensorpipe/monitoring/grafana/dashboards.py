"""The three dashboards, built with Grafana's foundation SDK: IoT overview, sensor metrics, pipeline health.

The first two read the database (through the read-only role), the third reads Prometheus. SQL panels use
Grafana's PostgreSQL macros only (`$__timeFilter`, `$__timeGroupAlias`), which expand to plain SQL on
PostgreSQL and TimescaleDB alike; PromQL comes from `monitoring/promql.py`, shared with the alert rules.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import (
    Dashboard,
    DashboardCursorSync,
    DynamicConfigValue,
    Panel,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from sensorpipe.config import Settings
from sensorpipe.monitoring import promql
from sensorpipe.monitoring.grafana.datasources import POSTGRES, PROMETHEUS
from sensorpipe.monitoring.grafana.sql_query import Sql
from sensorpipe.storage.queries import LATEST_READINGS, SENSOR_IDS

TAGS = ["sensorpipe"]
RATE = "$__rate_interval"
SENSORS_FILTER = "sensor_id in ($sensor)"
"""`$sensor` is a multi-value variable: Grafana expands it to a quoted, comma-separated list."""


def dashboards(settings: Settings) -> dict[str, Dashboard]:
    """Every dashboard by the file name it is exported to."""
    return {
        "iot-overview": iot_overview(settings),
        "sensor-metrics": sensor_metrics(),
        "pipeline-health": pipeline_health(),
    }


def _dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("browser")
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
    )


def _thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def _sql(query: str, ref_id: str = "A", *, series: bool = False) -> Sql:
    return Sql(query).ref_id(ref_id).format("time_series" if series else "table")


def _promql(expr: str, legend: str, ref_id: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).range()


PanelBuilder = stat.Panel | table.Panel | timeseries.Panel


def _numbered(builder: db.Dashboard, panels: list[PanelBuilder]) -> Dashboard:
    """Add the panels in reading order, with ids 1, 2, ... (stable across exports); the SDK lays them out."""
    for panel_id, panel in enumerate(panels, start=1):
        builder.with_panel(panel.id(panel_id))
    return builder.build()


def iot_overview(settings: Settings) -> Dashboard:
    silent_s = settings.monitoring.silent_sensor_minutes * 60
    sensors = (
        table.Panel()
        .title("Latest reading per sensor")
        .description(
            f"Freshness turns red after {settings.monitoring.silent_sensor_minutes} minutes without a reading."
        )
        .datasource(POSTGRES)
        .with_target(_sql(LATEST_READINGS))
        .override_by_name(
            "age_s",
            [DynamicConfigValue(id_val="unit", value="s"), DynamicConfigValue(id_val="displayName", value="freshness")],
        )
        .thresholds(_thresholds((None, "green"), (silent_s / 2, "orange"), (silent_s, "red")))
        .height(12)
        .span(24)
    )
    return _numbered(
        _dashboard(
            "sensorpipe-iot-overview",
            "sensorpipe · IoT overview",
            "Every sensor with its latest reading and how fresh it is; readings and rejects over the time range.",
        ),
        [
            _stat(
                "Sensors reporting",
                f"select count(distinct sensor_id) as sensors from sensor_data_1m"
                f" where bucket > now() - interval '{settings.monitoring.silent_sensor_minutes} minutes'",
                "none",
                f"Sensors with a reading in the last {settings.monitoring.silent_sensor_minutes} minutes.",
            ),
            _stat(
                "Readings",
                "select coalesce(sum(readings), 0) as readings from sensor_data_1m where $__timeFilter(bucket)",
                "short",
                "Readings stored in the time range (from the one-minute aggregates).",
            ),
            _stat(
                "Rejected records",
                "select count(*) as rejects from sensor_rejects where $__timeFilter(received_at)",
                "short",
                "Records sent to the dead-letter path in the time range.",
            ),
            _stat(
                "Newest reading",
                "select extract(epoch from now() - max(bucket))::double precision as age_s from sensor_data_1m"
                " where bucket > now() - interval '1 day'",
                "s",
                "Age of the newest one-minute aggregate.",
            ),
            sensors,
            timeseries.Panel()
            .title("Readings per minute")
            .datasource(POSTGRES)
            .with_target(
                _sql(
                    "select bucket as time, sum(readings) as readings from sensor_data_1m"
                    " where $__timeFilter(bucket) group by bucket order by bucket",
                    series=True,
                )
            )
            .unit("short")
            .height(8)
            .span(12),
            table.Panel()
            .title("Rejects by reason")
            .datasource(POSTGRES)
            .with_target(
                _sql(
                    "select reason, count(*) as rejects, max(received_at) as last_seen from sensor_rejects"
                    " where $__timeFilter(received_at) group by reason order by rejects desc"
                )
            )
            .height(8)
            .span(12),
        ],
    )


def _stat(title: str, query: str, unit: str, description: str) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(POSTGRES)
        .with_target(_sql(query))
        .unit(unit)
        .height(4)
        .span(6)
    )


def sensor_metrics() -> Dashboard:
    sensor = (
        db.QueryVariable("sensor")
        .label("Sensor")
        .description("Sensors with readings")
        .datasource(POSTGRES)
        .query(SENSOR_IDS)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )

    def minutes(title: str, columns: str, group_by: str, unit: str) -> timeseries.Panel:
        query = (
            f"select $__timeGroupAlias(bucket, $__interval), {columns} from sensor_data_1m"
            f" where $__timeFilter(bucket) and {SENSORS_FILTER} group by {group_by} order by 1"
        )
        return (
            timeseries.Panel()
            .title(title)
            .datasource(POSTGRES)
            .with_target(_sql(query, series=True))
            .unit(unit)
            .height(9)
            .span(12)
        )

    def average(measure: str) -> str:
        # Minutes regrouped to the panel's interval, weighted by readings so that busy minutes count more.
        return f"sum(avg_{measure} * readings) / nullif(sum(readings) filter (where avg_{measure} is not null), 0)"

    def per_sensor(measure: str, unit: str) -> timeseries.Panel:
        columns = f"sensor_id as metric, {average(measure)} as avg_{measure}"
        return minutes(f"{measure.capitalize()} per sensor (average)", columns, "1, 2", unit)

    def spread(measure: str, unit: str) -> timeseries.Panel:
        columns = f"min(min_{measure}) as min, {average(measure)} as avg, max(max_{measure}) as max"
        title = f"{measure.capitalize()} min / avg / max (selected sensors)"
        return minutes(title, columns, "1", unit).fill_opacity(10)

    summary = (
        "select sensor_id, sum(readings) as readings,"
        " min(min_temperature) as min_temperature, max(max_temperature) as max_temperature,"
        " min(min_humidity) as min_humidity, max(max_humidity) as max_humidity, max(bucket) as last_minute"
        f" from sensor_data_1m where $__timeFilter(bucket) and {SENSORS_FILTER}"
        " group by sensor_id order by sensor_id"
    )
    recent = (
        "select time, sensor_id, temperature, humidity, time_source, kafka_partition, kafka_offset"
        f" from sensor_data where $__timeFilter(time) and {SENSORS_FILTER} order by time desc limit 200"
    )
    return _numbered(
        _dashboard(
            "sensorpipe-sensor-metrics",
            "sensorpipe · Sensor metrics",
            "Temperature and humidity per sensor from the one-minute aggregates (sensor_data_1m).",
        ).with_variable(sensor),
        [
            per_sensor("temperature", "celsius"),
            per_sensor("humidity", "humidity"),
            spread("temperature", "celsius"),
            spread("humidity", "humidity"),
            table.Panel()
            .title("Per sensor over the time range")
            .datasource(POSTGRES)
            .with_target(_sql(summary))
            .height(8)
            .span(24),
            table.Panel()
            .title("Latest 200 readings")
            .datasource(POSTGRES)
            .with_target(_sql(recent))
            .height(10)
            .span(24),
        ],
    )


def pipeline_health() -> Dashboard:
    def series(title: str, unit: str, *targets: tuple[str, str], description: str = "") -> timeseries.Panel:
        panel = timeseries.Panel().title(title).description(description).datasource(PROMETHEUS).unit(unit)
        for index, (expr, legend) in enumerate(targets):
            panel.with_target(_promql(expr, legend, chr(ord("A") + index)))
        return panel.height(8).span(12)

    def gauge(title: str, expr: str, unit: str, *steps: tuple[float | None, str]) -> stat.Panel:
        return (
            stat.Panel()
            .title(title)
            .datasource(PROMETHEUS)
            .with_target(_promql(expr, title, "A"))
            .unit(unit)
            .thresholds(_thresholds(*steps))
            .height(4)
            .span(6)
        )

    return _numbered(
        _dashboard(
            "sensorpipe-pipeline-health",
            "sensorpipe · Pipeline health",
            "Rates per stage, Kafka lag, batch durations, dead letters and end-to-end latency, from Prometheus.",
        ),
        [
            gauge("MQTT connected", promql.MQTT_CONNECTED, "bool", (None, "red"), (1, "green")),
            gauge("Kafka reachable", promql.KAFKA_REACHABLE, "bool", (None, "red"), (1, "green")),
            gauge("Kafka lag (records)", promql.KAFKA_LAG, "short", (None, "green"), (100_000, "orange")),
            gauge("Failed queries", promql.FAILED_QUERIES, "none", (None, "green"), (1, "red")),
            series(
                "Rate per stage",
                "rps",
                (promql.mqtt_received(RATE), "MQTT received"),
                (promql.kafka_forwarded(RATE), "Kafka forwarded"),
                (promql.stream_read(RATE), "stream read"),
                (promql.sink_rows(RATE), "stored: {{sink}}"),
                description="Messages per second into and out of the bridge; rows per second through the stream job.",
            ),
            series(
                "End-to-end latency",
                "s",
                (promql.reading_latency(0.5, RATE), "p50"),
                (promql.reading_latency(0.95, RATE), "p95"),
                (promql.reading_latency(0.99, RATE), "p99"),
                (promql.bridge_latency(0.99, RATE), "bridge p99 (MQTT to Kafka)"),
                description="From a reading's own timestamp until it is stored in the database.",
            ),
            series("Kafka lag", "short", (promql.KAFKA_LAG, "records not yet read")),
            series(
                "Batch duration",
                "s",
                (promql.batch_duration(0.5, RATE), "p50 {{query}}"),
                (promql.batch_duration(0.95, RATE), "p95 {{query}}"),
            ),
            series(
                "Dead letters",
                "rps",
                (promql.dead_letters(RATE), "all"),
                (promql.dead_letters_by_reason(RATE), "{{reason}}"),
            ),
            series(
                "Bridge errors and in flight",
                "short",
                (promql.bridge_errors(RATE), "errors/s {{kind}}"),
                (promql.BRIDGE_IN_FLIGHT, "in flight"),
            ),
        ],
    )


def targets(board: Dashboard) -> list[cogvariants.Dataquery]:
    """Every query of a dashboard's panels."""
    return [target for panel in board.panels or [] if isinstance(panel, Panel) for target in panel.targets or []]


__all__ = ["dashboards", "targets"]
