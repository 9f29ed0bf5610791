"""Stream: the Spark Structured Streaming job that takes readings from Kafka into the lake and the database."""

from sensorpipe.stream.session import build_session, redacted, s3a_conf, spark_conf

__all__ = ["build_session", "redacted", "s3a_conf", "spark_conf"]
