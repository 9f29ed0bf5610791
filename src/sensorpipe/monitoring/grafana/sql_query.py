"""A query of Grafana's PostgreSQL data source, as the foundation SDK models queries of other data sources.

The SDK ships query types for Prometheus, Loki, Elasticsearch ... but none for SQL data sources; this is
the same shape (a `Dataquery` with `to_json`/`from_json`, a builder, a registered variant), so panels
mix it with the SDK's own types and exported dashboards load back into the SDK's model.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

POSTGRES_TYPE = "grafana-postgresql-datasource"

Format = Literal["table", "time_series"]


class SqlQuery(cogvariants.Dataquery):
    """`rawSql` in code mode; `format` says whether Grafana reads the rows as a table or as time series."""

    def __init__(
        self,
        raw_sql: str = "",
        format_val: Format = "table",
        ref_id: str = "A",
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.raw_sql = raw_sql
        self.format_val = format_val
        self.ref_id = ref_id
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "editorMode": "code",
            "format": self.format_val,
            "rawQuery": True,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        source = data.get("datasource")
        return cls(
            raw_sql=data.get("rawSql", ""),
            format_val=data.get("format", "table"),
            ref_id=data.get("refId", "A"),
            datasource=DataSourceRef.from_json(source) if source else None,
        )


class Sql(cogbuilder.Builder[SqlQuery]):
    """Builder of a `SqlQuery`, in the SDK's style: `Sql(query).format("time_series").ref_id("B")`."""

    def __init__(self, raw_sql: str) -> None:
        self._internal = SqlQuery(raw_sql)

    def build(self) -> SqlQuery:
        return self._internal

    def format(self, format_val: Format) -> Self:
        self._internal.format_val = format_val
        return self

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def datasource(self, datasource: DataSourceRef) -> Self:
        self._internal.datasource = datasource
        return self


cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(POSTGRES_TYPE, SqlQuery.from_json))

__all__ = ["POSTGRES_TYPE", "Sql", "SqlQuery"]
