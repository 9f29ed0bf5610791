"""Every SQL query of the exported dashboards and alert rules, run as Grafana would run it, on real pipeline data.

The exported files are read back as Grafana reads them; the `$sensor` variable takes the values its own
query returns; macros expand as Grafana's PostgreSQL data source expands them; the queries run as the
read-only `grafana_reader` role, over the last hour, after the session's short pipeline run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from sensorpipe.monitoring.grafana import export_grafana
from sensorpipe.monitoring.grafana.sql_query import POSTGRES_TYPE
from tests.grafana_support import expand
from tests.pipeline_support import Pipeline

pytestmark = pytest.mark.integration

END = datetime.now(UTC) + timedelta(hours=1)
START = END - timedelta(hours=3)
NUMERIC = {"int2", "int4", "int8", "float4", "float8", "numeric"}


@pytest.fixture(scope="module")
def exported(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("grafana")
    export_grafana(pipeline.settings, target)
    return target


def run_as_grafana(pipeline: Pipeline, query: str) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    """Column names, their PostgreSQL types and the rows, through the data source's role, read-only."""
    with psycopg.connect(pipeline.settings.postgres.dsn(role="reader")) as conn:
        conn.read_only = True
        cursor = conn.execute(query.encode())  # the dashboard's SQL as is, not a literal of this file
        assert cursor.description is not None
        names = [c.name for c in cursor.description]
        types = [
            conn.execute(sql.SQL("select typname from pg_type where oid = %s"), (c.type_code,)).fetchone()[0]  # type: ignore[index]
            for c in cursor.description
        ]
        return names, types, cursor.fetchall()


def sql_targets(exported: Path) -> list[tuple[str, str, str]]:
    """(dashboard/panel, format, rawSql) of every SQL panel."""
    found = []
    for path in sorted((exported / "dashboards" / "sensorpipe").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            if panel["datasource"]["type"] == POSTGRES_TYPE:
                found += [(f"{path.stem}/{panel['title']}", t["format"], t["rawSql"]) for t in panel["targets"]]
    return found


def sensor_values(pipeline: Pipeline, exported: Path) -> list[str]:
    board = json.loads((exported / "dashboards" / "sensorpipe" / "sensor-metrics.json").read_text())
    (variable,) = board["templating"]["list"]
    names, _types, rows = run_as_grafana(pipeline, expand(variable["query"], START, END, {}))
    assert names == ["sensor_id"]
    return [row[0] for row in rows]


def test_the_sensor_variable_lists_every_sensor_with_readings(pipeline: Pipeline, exported: Path) -> None:
    values = sensor_values(pipeline, exported)
    assert set(pipeline.sensors) <= set(values)
    assert values == sorted(values) and len(values) == len(set(values))


def test_every_sql_panel_returns_rows_of_its_format(pipeline: Pipeline, exported: Path) -> None:
    variables = {"sensor": sensor_values(pipeline, exported)}
    targets = sql_targets(exported)
    assert len(targets) >= 12
    for where, format_, raw in targets:
        names, types, rows = run_as_grafana(pipeline, expand(raw, START, END, variables))
        assert rows, f"{where}: no rows after a pipeline run"
        assert all(names) and "?column?" not in names, f"{where}: unnamed column in {names}"
        if format_ == "time_series":
            assert names[0] == "time", f"{where}: time series need `time` first, got {names}"
            assert types[0] in NUMERIC | {"timestamptz"}, where
            values = [t for n, t in zip(names[1:], types[1:], strict=True) if n != "metric"]
            assert values and set(values) <= NUMERIC, f"{where}: value columns must be numeric: {types}"
            assert [r[0] for r in rows] == sorted(r[0] for r in rows), f"{where}: time series sorted by time"


def test_the_overview_shows_each_pipeline_sensor_fresh(pipeline: Pipeline, exported: Path) -> None:
    board = json.loads((exported / "dashboards" / "sensorpipe" / "iot-overview.json").read_text())
    (raw,) = [p["targets"][0]["rawSql"] for p in board["panels"] if p["title"] == "Latest reading per sensor"]
    names, _types, rows = run_as_grafana(pipeline, expand(raw, START, END, {}))
    latest = {row[0]: dict(zip(names, row, strict=True)) for row in rows}
    for sensor in pipeline.sensors:
        assert latest[sensor]["temperature"] is not None or latest[sensor]["humidity"] is not None
        assert 0 <= latest[sensor]["age_s"] < 3600, latest[sensor]
    stats = {p["title"]: p["targets"][0]["rawSql"] for p in board["panels"] if p["type"] == "stat"}
    assert run_as_grafana(pipeline, expand(stats["Sensors reporting"], START, END, {}))[2][0][0] >= len(
        pipeline.sensors
    )
    assert run_as_grafana(pipeline, expand(stats["Rejected records"], START, END, {}))[2][0][0] > 0


def test_the_silent_sensor_alert_query_gives_one_number_per_sensor(pipeline: Pipeline, exported: Path) -> None:
    rules = yaml.safe_load((exported / "alerting" / "sensorpipe.yaml").read_text())["groups"][0]["rules"]
    (silent,) = [r for r in rules if r["uid"] == "sensorpipe-sensor-silent"]
    query = silent["data"][0]["model"]["rawSql"]
    names, types, rows = run_as_grafana(pipeline, expand(query, START, END, {}))
    assert names == ["sensor_id", "silent_minutes"] and types == ["text", "float8"]
    minutes = dict(rows)
    threshold = silent["data"][-1]["model"]["conditions"][0]["evaluator"]["params"][0]
    assert all(minutes[s] < threshold for s in pipeline.sensors), "sensors that just reported are not silent"


def test_the_reader_role_cannot_change_anything(pipeline: Pipeline) -> None:
    with (
        psycopg.connect(pipeline.settings.postgres.dsn(role="reader")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("delete from sensor_data where false")
