"""What Grafana does to the exported queries before a database or Prometheus sees them, for tests that run them.

Grafana's PostgreSQL data source (pkg/tsdb/grafana-postgresql-datasource/macros.go, without the
TimescaleDB option) first replaces template variables, then expands its macros:
- `$__timeFilter(col)` → `col BETWEEN '<from>' AND '<to>'` (RFC 3339, UTC);
- `$__timeGroupAlias(col, 1m)` → `floor(extract(epoch from col)/60)*60 AS "time"`; `$__timeGroup` without the alias;
- `$__timeFrom()` / `$__timeTo()` → the quoted bounds;
- a multi-value variable `$name` → its values single-quoted and comma-separated; `$__interval` → e.g. `1m`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

_MACRO = re.compile(r"\$__(timeFilter|timeGroupAlias|timeGroup|timeFrom|timeTo)\(([^)]*)\)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(interval: str) -> int:
    interval = interval.strip().strip("'\"")
    return int(interval[:-1]) * _UNITS[interval[-1]]


def quoted(values: Sequence[str]) -> str:
    return ",".join("'" + value.replace("'", "''") + "'" for value in values)


def expand(
    sql: str, start: datetime, end: datetime, variables: Mapping[str, Sequence[str]], interval: str = "1m"
) -> str:
    """`sql` as Grafana sends it to PostgreSQL for the time range [start, end]."""
    sql = sql.replace("$__interval", interval)
    for name, values in variables.items():
        sql = re.sub(rf"\${name}\b|\$\{{{name}\}}", quoted(values).replace("\\", "\\\\"), sql)

    def macro(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
        bounds = f"'{start.isoformat()}' AND '{end.isoformat()}'"
        if name == "timeFilter":
            return f"{args[0]} BETWEEN {bounds}"
        if name in ("timeGroup", "timeGroupAlias"):
            step = _seconds(args[1])
            group = f"floor(extract(epoch from {args[0]})/{step})*{step}"
            return group + (' AS "time"' if name == "timeGroupAlias" else "")
        return f"'{(start if name == 'timeFrom' else end).isoformat()}'"

    expanded = _MACRO.sub(macro, sql)
    assert "$" not in expanded, f"unexpanded Grafana syntax left in: {expanded}"
    return expanded


def expressions(grafana: Path, prometheus: Path) -> dict[str, str]:
    """Every PromQL expression of the exports, by where it is, with Grafana's interval variables filled in."""
    found: dict[str, str] = {}
    for path in sorted((grafana / "dashboards" / "sensorpipe").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if "expr" in target:
                    found[f"{path.stem}/{panel['title']}/{target['refId']}"] = target["expr"]
    alerting: Any = yaml.safe_load((grafana / "alerting" / "sensorpipe.yaml").read_text())
    for rule in alerting["groups"][0]["rules"]:
        for step in rule["data"]:
            if "expr" in step["model"]:
                found[f"grafana alert {rule['title']}"] = step["model"]["expr"]
    rules: Any = yaml.safe_load((prometheus / "rules" / "sensorpipe.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[rule.get("record") or rule["alert"]] = rule["expr"]
    return {where: expr.replace("$__rate_interval", "1m") for where, expr in found.items()}


__all__ = ["expand", "expressions", "quoted"]
