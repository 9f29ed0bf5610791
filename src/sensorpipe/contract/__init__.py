"""The data contract: what a reading is, how it is encoded, who it belongs to and why it can be rejected.

Every rule lives here once, and both sides of the pipeline import it: the bridge (headers, the sensor id
of its Kafka key), the simulator (measurements), the storage writer (columns) and the stream job, whose
executors decode each Kafka record with `reference` (stream/decode.py).

- `measurements`: names, units and ranges of the values a reading carries;
- `identity`: which sensor a reading belongs to (payload, topic, default);
- `timestamps`: the forms of a reading's time, and the time of a reading without one;
- `encodings`: the wrappings a Kafka record's value may come in; `json_text`: what counts as JSON;
- `reasons`: why a record or a reading is rejected;
- `headers`: the Kafka headers the bridge writes; `columns`: the database tables' columns;
- `reference`: all of it applied to one Kafka record.

Standard library and sensorpipe.config only: no Spark, MQTT, Kafka or PostgreSQL client.
"""
