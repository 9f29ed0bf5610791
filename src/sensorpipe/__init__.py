"""sensorpipe: IoT readings from MQTT through Kafka and Spark into a Parquet lake and PostgreSQL."""

__version__ = "0.1.0"
__all__ = ["__version__"]
