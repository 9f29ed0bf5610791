"""MQTT to Kafka: the bridge that acknowledges a message only once Kafka has it."""
