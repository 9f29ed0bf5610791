"""The Kafka, MQTT and topic clients and the reconnect backoff every stage builds on."""
