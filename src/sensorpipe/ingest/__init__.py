"""Ingest: getting readings from sensors into Kafka (MQTT clients, simulator, bridge)."""
