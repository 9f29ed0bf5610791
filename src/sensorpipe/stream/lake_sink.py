"""Spark's own Parquet file sink, called from a `foreachBatch`: the lake written exactly once by the query
that also writes the database, so Kafka is read and decoded once per micro-batch instead of once per sink.

`writeStream.format("parquet")` would need a query of its own. Its exactly-once machinery is the
`FileStreamSink` class: it writes a batch's files and then lists them in `<path>/_spark_metadata/<batch id>`,
and it skips a batch id its log already holds. Readers that honour the log (Spark, `storage/lake.py`,
the aggregates queries' file source) never see a partly written or replayed batch. This module drives
that same class through py4j with the micro-batch's id, so the lake keeps exactly the semantics (and the
log layout) of a file-sink query.

`FileStreamSink` is internal to Spark: its constructor is checked against the pinned pyspark (4.2.0) by
the stream tests, and a mismatch fails at start with the fix, not in the middle of a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Any

from py4j.protocol import Py4JError
from pyspark.sql import DataFrame, SparkSession

from sensorpipe.errors import SensorpipeError

SINK_CLASS = "org.apache.spark.sql.execution.streaming.sinks.FileStreamSink"
PARQUET_CLASS = "org.apache.spark.sql.execution.datasources.parquet.ParquetFileFormat"


def _java_class(jvm: Any, name: str) -> Any:
    return reduce(getattr, name.split("."), jvm)


class LakeSinkError(SensorpipeError):
    """The installed Spark has no usable FileStreamSink (another pyspark than the pinned one)."""


class ParquetLakeSink:
    """One Parquet dataset of the lake, partitioned by `partition_by`, written batch by batch exactly once."""

    def __init__(self, spark: SparkSession, path: str, partition_by: Sequence[str]) -> None:
        jvm = spark._jvm
        assert jvm is not None
        utils = jvm.org.apache.spark.api.python.PythonUtils
        try:
            parquet = _java_class(jvm, PARQUET_CLASS)()
            self._sink = _java_class(jvm, SINK_CLASS)(
                spark._jsparkSession, path, parquet, utils.toSeq(list(partition_by)), utils.toScalaMap({})
            )
        except (Py4JError, TypeError) as e:  # a missing class is a JavaPackage, which cannot be called
            raise LakeSinkError(
                f"Spark {spark.version} has no {SINK_CLASS}(session, path, format, partitions, options), which"
                " the lake sink relies on: install the pyspark version sensorpipe pins (`scripts/bootstrap.sh`)"
            ) from e

    def add_batch(self, batch_id: int, frame: DataFrame) -> None:
        """Write `frame` as batch `batch_id`; nothing happens when the log already holds that batch (a replay)."""
        self._sink.addBatch(batch_id, frame._jdf)
