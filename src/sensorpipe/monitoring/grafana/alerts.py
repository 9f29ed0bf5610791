"""Grafana-managed alert rules: a silent sensor, too many dead letters, end-to-end latency too high.

Built with the foundation SDK's alerting builders, then written in Grafana's file-provisioning shape
(`apiVersion: 1`, groups with a folder title, rules without the API's folder and group fields).
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import alerting, expr, prometheus
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models.alerting import Query as AlertQuery
from grafana_foundation_sdk.models.alerting import RelativeTimeRange, Rule

from sensorpipe.config import Settings
from sensorpipe.monitoring import promql
from sensorpipe.monitoring.grafana.datasources import POSTGRES, PROMETHEUS
from sensorpipe.monitoring.grafana.sql_query import Sql
from sensorpipe.storage.queries import LATEST_READINGS

FOLDER = "sensorpipe"
GROUP = "sensorpipe"
EXPRESSIONS_UID = "__expr__"
"""Grafana's server-side expressions (reduce, threshold) run on this pseudo data source."""
EVALUATE_EVERY = "1m"
LAST_10_MINUTES = RelativeTimeRange(from_val=600, to=0)


SILENT_SENSORS = f"select sensor_id, age_s / 60 as silent_minutes from ({LATEST_READINGS}) latest"
"""One row per sensor: its id (a label of the alert instance) and the minutes since its latest reading."""


def alert_rules(settings: Settings) -> list[Rule]:
    monitoring = settings.monitoring
    return [
        _rule(
            "sensorpipe-sensor-silent",
            "Sensor silent",
            Sql(SILENT_SENSORS).ref_id("A").format("table"),
            POSTGRES.uid or "",
            reduce=False,
            above=monitoring.silent_sensor_minutes,
            pending="0s",
            summary=f"Sensor {{{{ $labels.sensor_id }}}} sent nothing for over {monitoring.silent_sensor_minutes} min",
        ),
        _rule(
            "sensorpipe-dead-letters",
            "Dead-letter rate high",
            prometheus.Dataquery().expr(promql.dead_letters("5m")).ref_id("A").range(),
            PROMETHEUS.uid or "",
            reduce=True,
            above=monitoring.max_dead_letters_per_s,
            pending="5m",
            summary=f"More than {monitoring.max_dead_letters_per_s} records/s go to the dead-letter path",
        ),
        _rule(
            "sensorpipe-latency",
            "End-to-end latency high",
            prometheus.Dataquery().expr(promql.reading_latency(0.99, "5m")).ref_id("A").range(),
            PROMETHEUS.uid or "",
            reduce=True,
            above=monitoring.max_latency_s,
            pending="5m",
            summary=f"p99 from reading to database above {monitoring.max_latency_s} s",
        ),
    ]


def _rule(
    uid: str,
    title: str,
    query: Builder[Dataquery],
    datasource_uid: str,
    *,
    reduce: bool,
    above: float,
    pending: str,
    summary: str,
) -> Rule:
    """Query A, then (for time series) B = last value of A, then C = the threshold: the rule's condition."""
    steps: list[Builder[AlertQuery]] = [
        alerting.Query("A").datasource_uid(datasource_uid).model(query).relative_time_range(LAST_10_MINUTES),
    ]
    last = "A"
    if reduce:
        steps.append(
            alerting.Query("B")
            .datasource_uid(EXPRESSIONS_UID)
            .model(expr.TypeReduce().ref_id("B").expression("A").reducer("last"))
        )
        last = "B"
    threshold = (
        expr.TypeThreshold()
        .ref_id("C")
        .expression(last)
        .conditions(
            [
                expr.ExprTypeThresholdConditions().evaluator(
                    expr.ExprTypeThresholdConditionsEvaluator().type("gt").params([above])
                )
            ]
        )
    )
    steps.append(alerting.Query("C").datasource_uid(EXPRESSIONS_UID).model(threshold))
    return (
        alerting.Rule(title)
        .uid(uid)
        .queries(steps)
        .condition("C")
        .for_val(pending)
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels({"service": "sensorpipe"})
        .annotations({"summary": summary})
        .build()
    )


def alerting_provisioning(settings: Settings) -> dict[str, Any]:
    """The `apiVersion: 1` provisioning document of the rule group."""
    api_only = {"folderUID", "orgID", "ruleGroup"}
    rules = [
        {k: v for k, v in json.loads(json.dumps(rule, cls=JSONEncoder)).items() if k not in api_only}
        for rule in alert_rules(settings)
    ]
    return {
        "apiVersion": 1,
        "groups": [{"orgId": 1, "name": GROUP, "folder": FOLDER, "interval": EVALUATE_EVERY, "rules": rules}],
    }


__all__ = ["SILENT_SENSORS", "alert_rules", "alerting_provisioning"]
