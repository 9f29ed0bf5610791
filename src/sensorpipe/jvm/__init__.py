"""The JVM side: one pinned jar set for Spark and one for the local Kafka broker, resolved by Maven."""

from sensorpipe.jvm.jars import JAR_SETS, JarsError, JarSet, check_spark_jars, fetch, resolved

__all__ = ["JAR_SETS", "JarSet", "JarsError", "check_spark_jars", "fetch", "resolved"]
